//! The parser: mapping file text to a syntax tree (`ast`), every statement with its line.
//!
//! One statement per line; a line ending in `{` opens a block that a `}` alone on a later line
//! closes. Blocks and expressions nest at most `MAX_DEPTH` deep, so no input can make the
//! compiler or the executor recurse without bound.

use crate::ast::{CompareOp, Cond, Expr, File, SourceKind, Stmt, TableDecl, TargetKind};
use crate::lexer::{Tok, lex};

/// How deep blocks, parentheses and function calls may nest.
pub const MAX_DEPTH: usize = 32;

/// What is wrong, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

/// Words that cannot name a variable or a table.
const KEYWORDS: &[&str] = &[
    "mapping", "source", "target", "table", "let", "for", "in", "when", "and", "or", "not", "true", "false",
    "null", "exists", "empty",
];

fn body_of(stmt: &mut Stmt) -> &mut Vec<Stmt> {
    match stmt {
        Stmt::For { body, .. } | Stmt::When { body, .. } => body,
        // Only blocks are ever pushed on the stack.
        Stmt::Assign { .. } | Stmt::Let { .. } => unreachable!("only for and when open blocks"),
    }
}

fn stmt_line(stmt: &Stmt) -> usize {
    match stmt {
        Stmt::Assign { line, .. }
        | Stmt::Let { line, .. }
        | Stmt::For { line, .. }
        | Stmt::When { line, .. } => *line,
    }
}

#[derive(Default)]
struct Header {
    name: Option<(usize, String)>,
    source: Option<SourceKind>,
    target: Option<TargetKind>,
    tables: Vec<TableDecl>,
}

/// Parses a whole file.
pub fn parse(text: &str) -> Result<File, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut header = Header::default();
    let mut rules: Vec<Stmt> = Vec::new();
    // Blocks whose `}` has not been seen yet: the statements that opened them, bodies growing.
    let mut stack: Vec<Stmt> = Vec::new();
    for (index, line_text) in text.lines().enumerate() {
        let line = index + 1;
        let tokens = lex(line_text).map_err(|message| ParseError { line, message })?;
        if tokens.is_empty() {
            continue;
        }
        if tokens[0] == Tok::RBrace {
            if tokens.len() > 1 {
                return err(line, "`}` must stand alone on its line");
            }
            let Some(closed) = stack.pop() else {
                return err(line, "`}` without a block to close");
            };
            match stack.last_mut() {
                Some(parent) => body_of(parent).push(closed),
                None => rules.push(closed),
            }
            continue;
        }
        if let Some(keyword) = header_keyword(&tokens) {
            if !stack.is_empty() || !rules.is_empty() {
                return err(
                    line,
                    format!("`{keyword}` belongs in the header, before the rules"),
                );
            }
            parse_header(&tokens, line, &mut header)?;
            continue;
        }
        let stmt = parse_statement(&tokens, line)?;
        let opens_block = matches!(stmt, Stmt::For { .. } | Stmt::When { .. });
        if opens_block {
            if stack.len() >= MAX_DEPTH {
                return err(line, format!("blocks nest more than {MAX_DEPTH} deep"));
            }
            stack.push(stmt);
        } else {
            match stack.last_mut() {
                Some(parent) => body_of(parent).push(stmt),
                None => rules.push(stmt),
            }
        }
    }
    if let Some(open) = stack.last() {
        return err(
            stmt_line(open),
            "this block is never closed: a `}` line is missing",
        );
    }
    // A missing header line is reported at line 1.
    let first = 1;
    let Some((name_line, name)) = header.name else {
        return err(first, "the file must say `mapping NAME`");
    };
    let Some(source) = header.source else {
        return err(first, "the file must say `source hl7v2` or `source fhir`");
    };
    let Some(target) = header.target else {
        return err(
            first,
            "the file must say `target fhir <ResourceType>` or `target hl7v2 \"<MSH-9>\" \"<version>\"`",
        );
    };
    Ok(File {
        name,
        name_line,
        source,
        target,
        tables: header.tables,
        rules,
    })
}

/// The header keyword the line starts with, unless the line is an assignment to an element that
/// happens to bear that name (`source = ...`, `target.reference = ...`).
fn header_keyword(tokens: &[Tok]) -> Option<&'static str> {
    let Tok::Word(first) = &tokens[0] else {
        return None;
    };
    let keyword = ["mapping", "source", "target", "table"]
        .into_iter()
        .find(|k| k == first)?;
    (tokens.get(1) != Some(&Tok::Assign)).then_some(keyword)
}

fn parse_header(tokens: &[Tok], line: usize, header: &mut Header) -> Result<(), ParseError> {
    let words: Vec<Option<&str>> = tokens
        .iter()
        .map(|t| match t {
            Tok::Word(w) => Some(w.as_str()),
            _ => None,
        })
        .collect();
    match words[0] {
        Some("mapping") => {
            let name = match (tokens.len(), words.get(1).copied().flatten()) {
                (2, Some(name)) if is_mapping_name(name) => name,
                _ => return err(line, "expected `mapping NAME` (letters, digits, `-` and `_`)"),
            };
            if header.name.is_some() {
                return err(line, "`mapping` is given twice");
            }
            header.name = Some((line, name.to_owned()));
        }
        Some("source") => {
            let source = match (tokens.len(), words.get(1).copied().flatten()) {
                (2, Some("hl7v2")) => SourceKind::Hl7v2,
                (2, Some("fhir")) => SourceKind::Fhir,
                _ => return err(line, "expected `source hl7v2` or `source fhir`"),
            };
            if header.source.is_some() {
                return err(line, "`source` is given twice");
            }
            header.source = Some(source);
        }
        Some("target") => {
            let target = match tokens {
                [_, Tok::Word(kind), Tok::Word(resource)] if kind == "fhir" => {
                    if !is_resource_type(resource) {
                        return err(
                            line,
                            format!("`{resource}` is not a FHIR resource type name (e.g. `Patient`)"),
                        );
                    }
                    TargetKind::Fhir {
                        resource_type: resource.clone(),
                    }
                }
                [_, Tok::Word(kind), Tok::Str(message_type), Tok::Str(version)] if kind == "hl7v2" => {
                    if message_type.is_empty() || version.is_empty() {
                        return err(line, "the hl7v2 target needs a message type and a version");
                    }
                    TargetKind::Hl7v2 {
                        message_type: message_type.clone(),
                        version: version.clone(),
                    }
                }
                _ => {
                    return err(
                        line,
                        "expected `target fhir <ResourceType>` or `target hl7v2 \"ADT^A31^ADT_A05\" \"2.5\"`",
                    );
                }
            };
            if header.target.is_some() {
                return err(line, "`target` is given twice");
            }
            header.target = Some(target);
        }
        _ => {
            let (name, path) = match tokens {
                [_, Tok::Word(name), Tok::Assign, Tok::Str(path)] => (name, path),
                _ => return err(line, "expected `table NAME = \"tables/file.csv\"`"),
            };
            check_name(name, line, "a table")?;
            if header.tables.iter().any(|t| &t.name == name) {
                return err(line, format!("table `{name}` is declared twice"));
            }
            header.tables.push(TableDecl {
                line,
                name: name.clone(),
                path: path.clone(),
            });
        }
    }
    Ok(())
}

fn is_mapping_name(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_resource_type(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase()) && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Variable and table names: a letter, then letters, digits, `_` and `-`; not a keyword.
pub fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_name(name: &str, line: usize, what: &str) -> Result<(), ParseError> {
    if KEYWORDS.contains(&name) {
        return err(line, format!("`{name}` is a keyword and cannot name {what}"));
    }
    if !is_name(name) {
        return err(
            line,
            format!("`{name}` cannot name {what}: use a letter, then letters, digits, `_` or `-`"),
        );
    }
    // `o-5` reads field 5 of a segment item `o`, so a variable's `-` must not precede a digit.
    let dash_digit = name
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'-' && w[1].is_ascii_digit());
    if what == "a variable" && dash_digit {
        return err(
            line,
            format!("`{name}` cannot name a variable: `-` followed by a digit reads as a field (`o-5`)"),
        );
    }
    Ok(())
}

fn parse_statement(tokens: &[Tok], line: usize) -> Result<Stmt, ParseError> {
    let mut c = Cursor {
        tokens,
        pos: 0,
        line,
        depth: 0,
    };
    let first = match &tokens[0] {
        Tok::Word(w) => w.as_str(),
        other => {
            return err(
                line,
                format!(
                    "unknown statement: a line starts with a target, `let`, `for`, `when` or `}}`, not {}",
                    other.describe()
                ),
            );
        }
    };
    let is_assignment = tokens.get(1) == Some(&Tok::Assign);
    let stmt = match first {
        "let" if !is_assignment => {
            c.pos = 1;
            let name = c.word("a variable name after `let`")?;
            check_name(&name, line, "a variable")?;
            c.expect(&Tok::Assign, "`=` after the variable name")?;
            let expr = c.expr()?;
            let when = c.optional_when()?;
            Stmt::Let {
                line,
                name,
                expr,
                when,
            }
        }
        "for" if !is_assignment => {
            c.pos = 1;
            let var = c.word("a variable name after `for`")?;
            check_name(&var, line, "a variable")?;
            if !c.eat_word("in") {
                return err(
                    line,
                    "expected `for NAME in SOURCE [under ITEM] [when COND] [-> TARGET[]] {`",
                );
            }
            let source = c.expr()?;
            let under = if c.eat_word("under") {
                Some(c.word("a segment item after `under`")?)
            } else {
                None
            };
            let when = c.optional_when()?;
            let target = if c.eat(&Tok::Arrow) {
                Some(c.word("a target after `->`")?)
            } else {
                None
            };
            c.expect(&Tok::LBrace, "`{` at the end of the `for` line")?;
            Stmt::For {
                line,
                var,
                source,
                under,
                when,
                target,
                body: Vec::new(),
            }
        }
        "when" if !is_assignment => {
            c.pos = 1;
            let cond = c.cond()?;
            c.expect(&Tok::LBrace, "`{` at the end of the `when` line")?;
            Stmt::When {
                line,
                cond,
                body: Vec::new(),
            }
        }
        target if is_assignment => {
            c.pos = 2;
            let expr = c.expr()?;
            let when = c.optional_when()?;
            Stmt::Assign {
                line,
                target: target.to_owned(),
                expr,
                when,
            }
        }
        _ => {
            return err(
                line,
                format!(
                    "unknown statement starting with `{first}`: expected `TARGET = EXPR`, `let NAME = EXPR`, \
                     `for NAME in SOURCE ... {{`, `when COND {{` or `}}`"
                ),
            );
        }
    };
    if let Some(extra) = c.peek() {
        return err(
            line,
            format!("unexpected {} at the end of the statement", extra.describe()),
        );
    }
    Ok(stmt)
}

/// Reads expressions and conditions from one line's tokens.
struct Cursor<'t> {
    tokens: &'t [Tok],
    pos: usize,
    line: usize,
    depth: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn peek_at(&self, offset: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + offset)
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(w)) if w == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn found(&self) -> String {
        self.peek()
            .map_or_else(|| "the end of the line".to_owned(), Tok::describe)
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), ParseError> {
        if self.eat(tok) {
            Ok(())
        } else {
            err(self.line, format!("expected {what}, found {}", self.found()))
        }
    }

    fn word(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => err(self.line, format!("expected {what}, found {}", self.found())),
        }
    }

    fn optional_when(&mut self) -> Result<Option<Cond>, ParseError> {
        if self.eat_word("when") {
            Ok(Some(self.cond()?))
        } else {
            Ok(None)
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(self.line, format!("expression nests more than {MAX_DEPTH} deep"));
        }
        Ok(())
    }

    /// `A ?? B ?? ...`
    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut parts = vec![self.operand()?];
        while self.eat(&Tok::Coalesce) {
            parts.push(self.operand()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Coalesce(parts)
        })
    }

    fn operand(&mut self) -> Result<Expr, ParseError> {
        let token = match self.peek() {
            Some(token) => token.clone(),
            None => return err(self.line, "expected a value, found the end of the line"),
        };
        self.pos += 1;
        match token {
            Tok::Str(text) => Ok(Expr::Text(text)),
            Tok::Word(word) => {
                if self.peek() == Some(&Tok::LParen) {
                    return self.call(word);
                }
                match word.as_str() {
                    "true" => Ok(Expr::Bool(true)),
                    "false" => Ok(Expr::Bool(false)),
                    "null" => Ok(Expr::Null),
                    _ if word.starts_with(|c: char| c.is_ascii_digit() || c == '-') => {
                        if is_number(&word) {
                            Ok(Expr::Number(word))
                        } else {
                            err(self.line, format!("`{word}` is not a number"))
                        }
                    }
                    _ if KEYWORDS.contains(&word.as_str()) => {
                        err(self.line, format!("expected a value, found the keyword `{word}`"))
                    }
                    _ => Ok(Expr::Path(word)),
                }
            }
            other => err(self.line, format!("expected a value, found {}", other.describe())),
        }
    }

    /// `name(` already seen up to the name.
    fn call(&mut self, name: String) -> Result<Expr, ParseError> {
        if name.contains(['.', '[', '-', '@']) {
            return err(self.line, format!("`{name}` is not a function name"));
        }
        if name == "exists" || name == "empty" {
            return err(
                self.line,
                format!("`{name}(...)` is a condition: use it after `when`, not as a value"),
            );
        }
        self.enter()?;
        self.pos += 1; // (
        let mut args = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                args.push(self.expr()?);
                if self.eat(&Tok::RParen) {
                    break;
                }
                self.expect(&Tok::Comma, &format!("`,` or `)` in the arguments of `{name}`"))?;
            }
        }
        self.depth -= 1;
        Ok(Expr::Call { name, args })
    }

    /// `C or C`
    fn cond(&mut self) -> Result<Cond, ParseError> {
        let mut left = self.cond_and()?;
        while self.eat_word("or") {
            let right = self.cond_and()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn cond_and(&mut self) -> Result<Cond, ParseError> {
        let mut left = self.cond_not()?;
        while self.eat_word("and") {
            let right = self.cond_not()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn cond_not(&mut self) -> Result<Cond, ParseError> {
        if self.eat_word("not") {
            self.enter()?;
            let inner = self.cond_not()?;
            self.depth -= 1;
            return Ok(Cond::Not(Box::new(inner)));
        }
        self.cond_primary()
    }

    fn cond_primary(&mut self) -> Result<Cond, ParseError> {
        if self.eat(&Tok::LParen) {
            self.enter()?;
            let inner = self.cond()?;
            self.depth -= 1;
            self.expect(&Tok::RParen, "`)` to close the condition")?;
            return Ok(inner);
        }
        for (name, make) in [
            ("exists", Cond::Exists as fn(Expr) -> Cond),
            ("empty", Cond::Empty),
        ] {
            let is_test = matches!(self.peek(), Some(Tok::Word(w)) if w == name)
                && self.peek_at(1) == Some(&Tok::LParen);
            if is_test {
                self.pos += 2;
                let expr = self.expr()?;
                self.expect(&Tok::RParen, &format!("`)` to close `{name}(`"))?;
                return Ok(make(expr));
            }
        }
        let left = self.expr()?;
        let op = match self.peek() {
            Some(Tok::Eq) => CompareOp::Eq,
            Some(Tok::Ne) => CompareOp::Ne,
            Some(Tok::Word(w)) if w == "in" => {
                self.pos += 1;
                self.expect(&Tok::LParen, "`(` after `in`")?;
                let mut list = Vec::new();
                loop {
                    list.push(self.literal("the `in (...)` list")?);
                    if self.eat(&Tok::RParen) {
                        break;
                    }
                    self.expect(&Tok::Comma, "`,` or `)` in the `in (...)` list")?;
                }
                return Ok(Cond::In { expr: left, list });
            }
            _ => {
                return err(
                    self.line,
                    format!(
                        "expected a condition (`E == E`, `E != E`, `E in (...)`, `exists(E)`, `empty(E)`), \
                         found `{left}` followed by {}",
                        self.found()
                    ),
                );
            }
        };
        self.pos += 1;
        let right = self.expr()?;
        Ok(Cond::Compare { left, op, right })
    }

    fn literal(&mut self, what: &str) -> Result<Expr, ParseError> {
        match self.operand()? {
            e @ (Expr::Text(_) | Expr::Number(_) | Expr::Bool(_) | Expr::Null) => Ok(e),
            other => err(self.line, format!("{what} takes literals only, not `{other}`")),
        }
    }
}

/// A JSON number: `-?digits(.digits)?`.
fn is_number(word: &str) -> bool {
    let digits = word.strip_prefix('-').unwrap_or(word);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let leading_zero_ok = int == "0" || !int.starts_with('0');
    all_digits(int) && leading_zero_ok && frac.is_none_or(all_digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "mapping m\nsource hl7v2\ntarget fhir Patient\n";

    fn rules(body: &str) -> Vec<Stmt> {
        parse(&format!("{HEADER}{body}")).unwrap().rules
    }

    fn error(body: &str) -> ParseError {
        parse(&format!("{HEADER}{body}")).unwrap_err()
    }

    fn path(p: &str) -> Expr {
        Expr::Path(p.into())
    }

    #[test]
    fn header_lines() {
        let file = parse(
            "# c\nmapping ucr-adt\nsource fhir\ntarget hl7v2 \"ADT^A31^ADT_A05\" \"2.5\"\ntable g = \"tables/g.csv\"\n",
        )
        .unwrap();
        assert_eq!(file.name, "ucr-adt");
        assert_eq!(file.name_line, 2);
        assert_eq!(file.source, SourceKind::Fhir);
        assert_eq!(
            file.target,
            TargetKind::Hl7v2 {
                message_type: "ADT^A31^ADT_A05".into(),
                version: "2.5".into()
            }
        );
        assert_eq!(
            file.tables,
            [TableDecl {
                line: 5,
                name: "g".into(),
                path: "tables/g.csv".into()
            }]
        );
    }

    #[test]
    fn header_errors() {
        let cases = [
            ("source hl7v2\ntarget fhir Patient\n", 1, "mapping NAME"),
            ("mapping m\ntarget fhir Patient\n", 1, "source"),
            ("mapping m\nsource hl7v2\n", 1, "target"),
            ("mapping a b\n", 1, "expected `mapping NAME`"),
            ("mapping m\nmapping m\n", 2, "twice"),
            ("mapping m\nsource xml\n", 2, "source hl7v2"),
            ("mapping m\ntarget fhir patient\n", 2, "resource type"),
            ("mapping m\ntarget hl7v2 \"ADT\"\n", 2, "expected `target"),
            ("mapping m\ntable 1x = \"a\"\n", 2, "cannot name a table"),
            ("mapping m\ntable in = \"a\"\n", 2, "keyword"),
            (
                "mapping m\ntable t = \"a\"\ntable t = \"b\"\n",
                3,
                "declared twice",
            ),
            (&format!("{HEADER}active = true\ntable t = \"a\"\n"), 5, "header"),
        ];
        for (text, line, message) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.message.contains(message), "{text:?}: {e:?}");
        }
    }

    #[test]
    fn assignment_with_condition() {
        assert_eq!(
            rules("system = lookup(t, cx.4.1) ?? \"x\" when exists(cx.4)\n"),
            [Stmt::Assign {
                line: 4,
                target: "system".into(),
                expr: Expr::Coalesce(vec![
                    Expr::Call {
                        name: "lookup".into(),
                        args: vec![path("t"), path("cx.4.1")]
                    },
                    Expr::Text("x".into())
                ]),
                when: Some(Cond::Exists(path("cx.4"))),
            }]
        );
    }

    #[test]
    fn literals() {
        let exprs: Vec<Expr> = rules("a = true\nb = false\nc = null\nd = -1.5\ne = 0\nf = \"t\"\n")
            .into_iter()
            .map(|s| match s {
                Stmt::Assign { expr, .. } => expr,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            exprs,
            [
                Expr::Bool(true),
                Expr::Bool(false),
                Expr::Null,
                Expr::Number("-1.5".into()),
                Expr::Number("0".into()),
                Expr::Text("t".into())
            ]
        );
        assert!(error("a = 01\n").message.contains("not a number"));
        assert!(error("a = 1.\n").message.contains("not a number"));
    }

    #[test]
    fn blocks_nest_with_lines() {
        let body = "when MSH-9.2 in (\"A40\", \"A47\") {\n  let x = MRG-1.1\n  for m in MRG-1[*] when exists(m.1) -> @previous[] {\n    value = m.1\n  }\n}\nactive = true\n";
        let parsed = rules(body);
        assert_eq!(parsed.len(), 2);
        let Stmt::When { line, cond, body } = &parsed[0] else {
            panic!("{parsed:?}")
        };
        assert_eq!(*line, 4);
        assert_eq!(
            cond,
            &Cond::In {
                expr: path("MSH-9.2"),
                list: vec![Expr::Text("A40".into()), Expr::Text("A47".into())]
            }
        );
        assert!(matches!(&body[0], Stmt::Let { line: 5, name, .. } if name == "x"));
        let Stmt::For {
            line,
            var,
            source,
            under,
            when,
            target,
            body,
        } = &body[1]
        else {
            panic!()
        };
        assert_eq!(under, &None);
        assert_eq!((*line, var.as_str(), source), (6, "m", &path("MRG-1[*]")));
        assert_eq!(when, &Some(Cond::Exists(path("m.1"))));
        assert_eq!(target.as_deref(), Some("@previous[]"));
        assert!(matches!(&body[0], Stmt::Assign { line: 7, .. }));
        assert!(matches!(&parsed[1], Stmt::Assign { line: 10, .. }));
    }

    #[test]
    fn for_under_a_segment_item() {
        let parsed =
            rules("for r in OBR[*] {\nfor o in OBX[*] under r when exists(o-5) -> entry[] {\n}\n}\n");
        let Stmt::For { body, .. } = &parsed[0] else {
            panic!()
        };
        assert!(matches!(&body[0], Stmt::For { under: Some(r), when: Some(_), .. } if r == "r"));
    }

    #[test]
    fn for_without_target() {
        let parsed = rules("for o in OBX[*] {\n}\n");
        assert!(matches!(&parsed[0], Stmt::For { target: None, body, .. } if body.is_empty()));
    }

    #[test]
    fn condition_precedence() {
        let Stmt::When { cond, .. } =
            &rules("when not a == \"1\" or b != c and (empty(d) or e == null) {\n}\n")[0]
        else {
            panic!()
        };
        assert_eq!(
            cond.to_string(),
            "(not a == \"1\" or (b != c and (empty(d) or e == null)))"
        );
    }

    #[test]
    fn keywords_as_element_names_are_assignments() {
        let parsed = rules("for = x\nwhen = y\ntarget = z\nsource = s\nlet = l\n");
        let targets: Vec<&str> = parsed
            .iter()
            .map(|s| match s {
                Stmt::Assign { target, .. } => target.as_str(),
                _ => "?",
            })
            .collect();
        assert_eq!(targets, ["for", "when", "target", "source", "let"]);
    }

    #[test]
    fn statement_errors_name_their_line() {
        let cases = [
            ("this is not a rule\n", 4, "unknown statement"),
            ("\"x\" = 1\n", 4, "unknown statement"),
            ("a = \n", 4, "expected a value"),
            ("a = b c\n", 4, "unexpected `c`"),
            ("a = f(b\n", 4, "`,` or `)`"),
            ("a = b when\n", 4, "expected a value"),
            ("a = b when c\n", 4, "expected a condition"),
            ("a = b when (c == d\n", 4, "`)`"),
            ("a = b when c in d\n", 4, "`(` after `in`"),
            ("a = b when c in (d)\n", 4, "literals only"),
            ("a = exists(b)\n", 4, "condition"),
            ("a = P.x (1)\n", 4, "not a function name"),
            ("a = when\n", 4, "keyword"),
            ("let = \n", 4, "expected a value"),
            ("let 9 = x\n", 4, "cannot name a variable"),
            ("let x y\n", 4, "`=`"),
            ("for x PID-3[*] {\n}\n", 4, "for NAME in"),
            ("for x in PID-3[*]\n", 4, "`{`"),
            ("for x in PID-3[*] -> {\n}\n", 4, "target after"),
            ("for and in PID-3[*] {\n}\n", 4, "keyword"),
            ("when a == b\n", 4, "`{`"),
            ("}\n", 4, "without a block"),
            ("when a == b {\n} x\n", 5, "alone"),
            ("a = 1\n\nwhen a == b {\nb = 1\n", 6, "never closed"),
            ("when a == b {\nmapping x\n}\n", 5, "header"),
            ("a = \"x\n", 4, "unclosed"),
        ];
        for (body, line, message) in cases {
            let e = error(body);
            assert_eq!(e.line, line, "{body:?}: {e:?}");
            assert!(e.message.contains(message), "{body:?}: {e:?}");
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("a = b when {}c == d{}\n", "(".repeat(40), ")".repeat(40));
        assert!(error(&deep).message.contains("deep"));
        let deep = format!("a = {}b{}\n", "f(".repeat(40), ")".repeat(40));
        assert!(error(&deep).message.contains("deep"));
        let deep = format!("a = b when {}c == d\n", "not ".repeat(40));
        assert!(error(&deep).message.contains("deep"));
        let blocks = "when a == b {\n".repeat(40);
        assert!(error(&blocks).message.contains("deep"));
    }

    #[test]
    fn bom_and_crlf_are_accepted() {
        let file =
            parse("\u{feff}mapping m\r\nsource hl7v2\r\ntarget fhir Patient\r\nactive = true\r\n").unwrap();
        assert_eq!(file.rules.len(), 1);
    }
}
