//! The syntax tree of one mapping file, as the parser reads it: statements with their line
//! numbers, expressions and conditions. Paths are kept as written; `compile` checks and
//! pre-parses them, because what a path means depends on the source and target kinds.

use std::fmt;

/// Where a mapping reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Hl7v2,
    Fhir,
}

/// What a mapping builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    Fhir { resource_type: String },
    Hl7v2 { message_type: String, version: String },
}

/// One parsed file.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub name: String,
    pub name_line: usize,
    pub source: SourceKind,
    pub target: TargetKind,
    pub tables: Vec<TableDecl>,
    pub rules: Vec<Stmt>,
}

/// `table NAME = "path"`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDecl {
    pub line: usize,
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `TARGET = EXPR [when COND]`
    Assign {
        line: usize,
        target: String,
        expr: Expr,
        when: Option<Cond>,
    },
    /// `let NAME = EXPR [when COND]`
    Let {
        line: usize,
        name: String,
        expr: Expr,
        when: Option<Cond>,
    },
    /// `for NAME in SOURCE [when COND] [-> TARGET] {` ... `}`
    For {
        line: usize,
        var: String,
        source: Expr,
        /// `under ITEM`: only the segments of the group a segment item opens (those after it,
        /// before the next segment of its name), as OBX under its OBR.
        under: Option<String>,
        when: Option<Cond>,
        target: Option<String>,
        body: Vec<Stmt>,
    },
    /// `when COND {` ... `}`
    When {
        line: usize,
        cond: Cond,
        body: Vec<Stmt>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Text(String),
    /// A number as written (checked to be a JSON number by the parser).
    Number(String),
    Bool(bool),
    Null,
    /// A source path, item path or variable, as written.
    Path(String),
    Call {
        name: String,
        args: Vec<Expr>,
    },
    /// `A ?? B ?? C`: the first that is not absent. Never nested directly in another.
    Coalesce(Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Compare { left: Expr, op: CompareOp, right: Expr },
    In { expr: Expr, list: Vec<Expr> },
    Exists(Expr),
    Empty(Expr),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

/// Writes a text literal so that the lexer reads it back as the same text.
pub fn quote(text: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("\"")?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Expressions print as they are written in a file: error messages quote them, and the parser's
/// round-trip test reads them back.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Text(text) => quote(text, f),
            Expr::Number(n) | Expr::Path(n) => f.write_str(n),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Null => f.write_str("null"),
            Expr::Call { name, args } => {
                write!(f, "{name}(")?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
            Expr::Coalesce(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ?? ")?;
                    }
                    write!(f, "{part}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cond::Compare { left, op, right } => {
                let op = match op {
                    CompareOp::Eq => "==",
                    CompareOp::Ne => "!=",
                };
                write!(f, "{left} {op} {right}")
            }
            Cond::In { expr, list } => {
                write!(f, "{expr} in (")?;
                for (i, item) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
            Cond::Exists(e) => write!(f, "exists({e})"),
            Cond::Empty(e) => write!(f, "empty({e})"),
            // Always parenthesised: printing never has to know about precedence.
            Cond::And(a, b) => write!(f, "({a} and {b})"),
            Cond::Or(a, b) => write!(f, "({a} or {b})"),
            Cond::Not(c) => write!(f, "not {c}"),
        }
    }
}
