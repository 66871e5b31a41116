//! The lexer: one line of a mapping file into tokens. Statements never span lines, so lexing a
//! line at a time keeps every error on the right line.
//!
//! Paths are single `Word` tokens (`PID-3[1].4.2`, `name[0].given[]`, `@previous[]`), including
//! a FHIRPath function's parentheses (`Patient.name.where(use='official').family`): what a path
//! means is decided later, where the source and target kinds are known.

/// One token of a line.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A keyword, name, number or path, as written.
    Word(String),
    /// A `"text"` literal, escapes decoded.
    Str(String),
    LParen,
    RParen,
    Comma,
    /// `=`
    Assign,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `??`
    Coalesce,
    LBrace,
    RBrace,
    /// `->`
    Arrow,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str(s) => format!("the text {s:?}"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Assign => "`=`".into(),
            Tok::Eq => "`==`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::Coalesce => "`??`".into(),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::Arrow => "`->`".into(),
        }
    }
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '@'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']' | '*' | '@')
}

/// Tokens of one line; a `#` outside a text literal starts a comment.
pub fn lex(line: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        let (token, len) = match (c, next) {
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            (',', _) => (Tok::Comma, 1),
            ('{', _) => (Tok::LBrace, 1),
            ('}', _) => (Tok::RBrace, 1),
            ('=', Some('=')) => (Tok::Eq, 2),
            ('=', _) => (Tok::Assign, 1),
            ('!', Some('=')) => (Tok::Ne, 2),
            ('?', Some('?')) => (Tok::Coalesce, 2),
            ('-', Some('>')) => (Tok::Arrow, 2),
            ('"', _) => {
                let (text, len) = string_literal(&chars[i..])?;
                (Tok::Str(text), len)
            }
            ('-', Some(d)) if d.is_ascii_digit() => {
                let len = word(&chars[i..])?;
                (Tok::Word(chars[i..i + len].iter().collect()), len)
            }
            (c, _) if is_word_start(c) => {
                let len = word(&chars[i..])?;
                (Tok::Word(chars[i..i + len].iter().collect()), len)
            }
            ('!', _) => return Err("`!` must be followed by `=` (`!=`); for negation write `not`".into()),
            ('?', _) => return Err("`?` must be followed by `?` (`??`)".into()),
            ('\'', _) => {
                return Err(
                    "text literals take double quotes: \"text\" (single quotes only inside \
                            FHIRPath `.where(...)`)"
                        .into(),
                );
            }
            (c, _) => return Err(format!("unexpected character {c:?}")),
        };
        tokens.push(token);
        i += len;
    }
    Ok(tokens)
}

/// `"..."` with the escapes `\"`, `\\` and `\n`: the decoded text and the characters consumed.
fn string_literal(chars: &[char]) -> Result<(String, usize), String> {
    let mut text = String::new();
    let mut i = 1;
    while let Some(&c) = chars.get(i) {
        match c {
            '"' => return Ok((text, i + 1)),
            '\\' => {
                match chars.get(i + 1) {
                    Some('"') => text.push('"'),
                    Some('\\') => text.push('\\'),
                    Some('n') => text.push('\n'),
                    Some(other) => {
                        return Err(format!(
                            "unknown escape `\\{other}` in a text literal (known: \\\" \\\\ \\n)"
                        ));
                    }
                    None => break,
                }
                i += 2;
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    Err("unclosed text literal: a `\"` is missing".into())
}

/// The length of the word starting at `chars[0]`. A word stops before `->`, and takes in the
/// parentheses of a FHIRPath function (`.where(...)`, `.first()`) that follow it directly.
fn word(chars: &[char]) -> Result<usize, String> {
    let mut i = 1;
    loop {
        while let Some(&c) = chars.get(i) {
            if !is_word_char(c) || (c == '-' && chars.get(i + 1) == Some(&'>')) {
                break;
            }
            i += 1;
        }
        if chars.get(i) != Some(&'(') || !ends_with_method(&chars[..i]) {
            return Ok(i);
        }
        i += group(&chars[i..])?;
    }
}

/// True when the word so far ends with `.name`, i.e. a `(` after it calls a FHIRPath function.
fn ends_with_method(word: &[char]) -> bool {
    let name_len = word
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
        .count();
    name_len > 0 && word.len() > name_len && word[word.len() - name_len - 1] == '.'
}

/// The length of a balanced `( ... )` group, single-quoted strings inside taken whole.
fn group(chars: &[char]) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            '\'' => {
                i += 1;
                while let Some(&c) = chars.get(i) {
                    if c == '\\' {
                        i += 1;
                    } else if c == '\'' {
                        break;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unclosed '...' literal inside a FHIRPath function".into());
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err("unclosed `(` in a FHIRPath function".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Tok> {
        lex(line).unwrap()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.into())
    }

    #[test]
    fn assignments_and_paths() {
        assert_eq!(
            words("system = lookup(authority, cx.4.1) ?? \"x\" # comment"),
            [
                w("system"),
                Tok::Assign,
                w("lookup"),
                Tok::LParen,
                w("authority"),
                Tok::Comma,
                w("cx.4.1"),
                Tok::RParen,
                Tok::Coalesce,
                Tok::Str("x".into())
            ]
        );
        assert_eq!(
            words("for cx in PID-3[*] when exists(cx.1) -> identifier[] {"),
            [
                w("for"),
                w("cx"),
                w("in"),
                w("PID-3[*]"),
                w("when"),
                w("exists"),
                Tok::LParen,
                w("cx.1"),
                Tok::RParen,
                Tok::Arrow,
                w("identifier[]"),
                Tok::LBrace
            ]
        );
        assert_eq!(
            words("OBX[2]-5 @previous[] name[0].given[]"),
            [w("OBX[2]-5"), w("@previous[]"), w("name[0].given[]")]
        );
    }

    #[test]
    fn arrow_without_spaces_and_negative_numbers() {
        assert_eq!(
            words("PID-3[*]->identifier[]"),
            [w("PID-3[*]"), Tok::Arrow, w("identifier[]")]
        );
        assert_eq!(words("x = -12.5"), [w("x"), Tok::Assign, w("-12.5")]);
    }

    #[test]
    fn fhirpath_functions_stay_in_the_word() {
        assert_eq!(
            words("family = Patient.name.where(use='official').family.first() ?? n.given.first()"),
            [
                w("family"),
                Tok::Assign,
                w("Patient.name.where(use='official').family.first()"),
                Tok::Coalesce,
                w("n.given.first()")
            ]
        );
        assert_eq!(
            words("x = P.a.where(s='a)b')"),
            [w("x"), Tok::Assign, w("P.a.where(s='a)b')")]
        );
        assert!(lex("x = P.a.where(s='a'").is_err());
        assert!(lex("x = P.a.where(s='a").is_err());
    }

    #[test]
    fn operators() {
        assert_eq!(
            words("a == b != c ?? d"),
            [w("a"), Tok::Eq, w("b"), Tok::Ne, w("c"), Tok::Coalesce, w("d")]
        );
        assert!(lex("a ! b").unwrap_err().contains("not"));
        assert!(lex("a ? b").is_err());
        assert!(lex("a = 'x'").unwrap_err().contains("double quotes"));
        assert!(lex("a = %").unwrap_err().contains("unexpected character"));
    }

    #[test]
    fn text_literals() {
        assert_eq!(
            words(r#""a\"b\\c\nd # not a comment""#),
            [Tok::Str("a\"b\\c\nd # not a comment".into())]
        );
        assert!(lex(r#""abc"#).unwrap_err().contains("unclosed"));
        assert!(lex(r#""a\qb""#).unwrap_err().contains("unknown escape"));
        assert!(lex(r#""a\"#).unwrap_err().contains("unclosed"));
        assert_eq!(words("\"日本\""), [Tok::Str("日本".into())]);
    }
}
