//! Lexer of the contract language: turns a contract string into tokens with byte spans.
//!
//! # Invariants
//! - every token's `start..end` lies on `char` boundaries of the source text
//! - number tokens are finite and at most [`super::MAX_LITERAL`] in magnitude

use super::{ContractError, MAX_LITERAL, column};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    Number(f64),
    /// A dotted name such as `gpu0.temp_c`, or a function name.
    Ident,
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Lt,
    Le,
    Gt,
    Ge,
    EqEq,
    Ne,
    And,
    Or,
    Not,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    /// Byte offsets into the source text.
    pub start: usize,
    pub end: usize,
}

fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_'
}

fn is_ident_continue(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Splits `text` into tokens, or reports the first character that cannot start one.
pub(crate) fn lex(text: &str) -> Result<Vec<Token>, ContractError> {
    let bytes = text.as_bytes();
    let peek = |i: usize| bytes.get(i).copied();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(byte) = peek(i) {
        let start = i;
        let unknown = |len: usize| ContractError::UnknownOperator {
            op: text[start..start + len].to_owned(),
            at: column(text, start),
        };
        let (kind, len) = match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'0'..=b'9' => {
                let mut end = i;
                while peek(end).is_some_and(|b| b.is_ascii_digit()) {
                    end += 1;
                }
                if peek(end) == Some(b'.') {
                    end += 1;
                    if !peek(end).is_some_and(|b| b.is_ascii_digit()) {
                        return Err(ContractError::MalformedNumber {
                            text: text[start..end].to_owned(),
                            at: column(text, start),
                        });
                    }
                    while peek(end).is_some_and(|b| b.is_ascii_digit()) {
                        end += 1;
                    }
                }
                let literal = &text[start..end];
                let value = literal.parse::<f64>().unwrap_or(f64::INFINITY);
                if !value.is_finite() || value > MAX_LITERAL {
                    return Err(ContractError::NumberOutOfRange {
                        text: literal.to_owned(),
                        at: column(text, start),
                    });
                }
                (TokenKind::Number(value), end - start)
            }
            b if is_ident_start(b) => {
                let mut end = i;
                loop {
                    while peek(end).is_some_and(is_ident_continue) {
                        end += 1;
                    }
                    // A dot continues the name only when a name part follows it.
                    if peek(end) == Some(b'.') && peek(end + 1).is_some_and(is_ident_continue) {
                        end += 1;
                    } else {
                        break;
                    }
                }
                let kind = match &text[start..end] {
                    "and" => TokenKind::And,
                    "or" => TokenKind::Or,
                    "not" => TokenKind::Not,
                    _ => TokenKind::Ident,
                };
                (kind, end - start)
            }
            b'(' => (TokenKind::LParen, 1),
            b')' => (TokenKind::RParen, 1),
            b',' => (TokenKind::Comma, 1),
            b'+' => (TokenKind::Plus, 1),
            b'-' => (TokenKind::Minus, 1),
            b'/' => (TokenKind::Slash, 1),
            b'*' => match peek(i + 1) {
                Some(b'*') => return Err(unknown(2)),
                _ => (TokenKind::Star, 1),
            },
            b'<' => match peek(i + 1) {
                Some(b'=') => (TokenKind::Le, 2),
                Some(b'>' | b'<') => return Err(unknown(2)),
                _ => (TokenKind::Lt, 1),
            },
            b'>' => match peek(i + 1) {
                Some(b'=') => (TokenKind::Ge, 2),
                Some(b'>') => return Err(unknown(2)),
                _ => (TokenKind::Gt, 1),
            },
            b'=' => match (peek(i + 1), peek(i + 2)) {
                (Some(b'='), Some(b'=')) => return Err(unknown(3)),
                (Some(b'='), _) => (TokenKind::EqEq, 2),
                (Some(b'<' | b'>'), _) => return Err(unknown(2)),
                _ => return Err(unknown(1)),
            },
            b'!' => match peek(i + 1) {
                Some(b'=') => (TokenKind::Ne, 2),
                _ => return Err(unknown(1)),
            },
            b'&' | b'|' => {
                let len = if peek(i + 1) == Some(byte) { 2 } else { 1 };
                return Err(unknown(len));
            }
            b'%' | b'^' | b'~' => return Err(unknown(1)),
            _ => {
                // Every earlier token ended on a char boundary, so `start` is one.
                let ch = text[start..].chars().next().unwrap_or('\u{fffd}');
                return Err(ContractError::UnexpectedCharacter {
                    ch,
                    at: column(text, start),
                });
            }
        };
        i += len;
        tokens.push(Token {
            kind,
            start,
            end: i,
        });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        lex(text).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn lexes_names_numbers_and_operators() {
        use TokenKind::*;
        assert_eq!(
            kinds("gpu0.temp_c + 0.25*x <= 85 and not (a != b)"),
            vec![
                Ident,
                Plus,
                Number(0.25),
                Star,
                Ident,
                Le,
                Number(85.0),
                And,
                Not,
                LParen,
                Ident,
                Ne,
                Ident,
                RParen
            ]
        );
    }

    #[test]
    fn dotted_names_are_one_token() {
        let tokens = lex("cpufreq.0.max_khz").unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!((tokens[0].start, tokens[0].end), (0, 17));
    }

    #[test]
    fn unknown_operators_name_themselves() {
        for (text, op) in [
            ("a && b", "&&"),
            ("a = b", "="),
            ("a => b", "=>"),
            ("a <> b", "<>"),
            ("a ** 2", "**"),
            ("a % 2", "%"),
            ("a === b", "==="),
        ] {
            assert_eq!(
                lex(text),
                Err(ContractError::UnknownOperator {
                    op: op.into(),
                    at: 3
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn non_ascii_is_an_unexpected_character_at_its_column() {
        assert_eq!(
            lex("é < 1"),
            Err(ContractError::UnexpectedCharacter { ch: 'é', at: 1 })
        );
        assert_eq!(
            lex("ab < é"),
            Err(ContractError::UnexpectedCharacter { ch: 'é', at: 6 })
        );
    }
}
