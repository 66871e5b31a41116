//! `tributary mapping test [PATH...]`: run the golden tests kept beside the mappings and show,
//! for each mismatch, the field, what was expected and what came out, and which rules fired.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::mapping::{MappingSet, run_golden_tests};

#[derive(Subcommand)]
pub enum MappingCommand {
    /// Run golden tests: every case under <dir>/tests, or only the cases or folders given.
    Test(TestArgs),
}

#[derive(Args)]
pub struct TestArgs {
    /// The mappings folder.
    #[arg(long, default_value = "mappings")]
    dir: PathBuf,
    /// Show the rules that fired for passing cases too.
    #[arg(long)]
    verbose: bool,
    /// Case files (`*.in.hl7`, `*.in.json`) or folders of them; all cases when none.
    paths: Vec<PathBuf>,
}

pub fn run(command: MappingCommand) -> ExitCode {
    let MappingCommand::Test(args) = command;
    let set = match MappingSet::load(&args.dir) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let report = run_golden_tests(&args.dir, &set, &args.paths);
    let mut failed = 0;
    for case in &report.cases {
        let passed = case.error.is_none() && case.mismatches.is_empty();
        if !passed {
            failed += 1;
        }
        println!(
            "{}  {} ({})",
            if passed { "ok  " } else { "FAIL" },
            case.case.display(),
            case.mapping
        );
        if let Some(error) = &case.error {
            println!("      error: {error}");
        }
        for mismatch in &case.mismatches {
            println!(
                "      {}: expected {}, got {}",
                mismatch.path,
                mismatch.expected.as_deref().unwrap_or("(absent)"),
                mismatch.got.as_deref().unwrap_or("(absent)")
            );
        }
        if !passed || args.verbose {
            let fired: Vec<String> = case
                .fired
                .iter()
                .map(|rule| format!("{}:{}", rule.line, rule.target))
                .collect();
            println!("      rules fired: {}", fired.join(" "));
        }
    }
    println!("{} passed, {} failed", report.cases.len() - failed, failed);
    if report.cases.is_empty() {
        eprintln!("error: no golden test cases found");
        return ExitCode::FAILURE;
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
