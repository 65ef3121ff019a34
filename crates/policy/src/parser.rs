//! Parser for the oslo.policy check language.
//!
//! Tokenization follows `oslo_policy/_parser.py`: the text is split on
//! whitespace, leading `(` and trailing `)` are peeled off each word, `and`,
//! `or` and `not` are keywords (case-insensitive), a word wrapped in matching
//! quotes is a string token (never valid on its own), anything else is a
//! check `KIND:MATCH`, `@` or `!`. Precedence: `not` > `and` > `or`.
//!
//! Unlike oslo.policy, which logs and fails closed on text it cannot
//! understand, every such case is reported as an error so that a broken
//! default or override is caught at load time.

use crate::ast::{Kind, Node, Part, RuleId, Template};

/// Maximum nesting of parentheses and `not`; keeps parsing and evaluation
/// well away from stack exhaustion.
pub(crate) const MAX_NESTING: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Quoted(&'a str),
    Check(&'a str),
}

impl std::fmt::Display for Tok<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::And => f.write_str("`and`"),
            Tok::Or => f.write_str("`or`"),
            Tok::Not => f.write_str("`not`"),
            Tok::Quoted(s) | Tok::Check(s) => write!(f, "`{s}`"),
        }
    }
}

fn tokenize(text: &str) -> Vec<Tok<'_>> {
    let mut toks = Vec::new();
    for word in text.split_whitespace() {
        let word_l = word.trim_start_matches('(');
        toks.extend(std::iter::repeat_n(Tok::LParen, word.len() - word_l.len()));
        if word_l.is_empty() {
            continue;
        }
        let clean = word_l.trim_end_matches(')');
        let trailing = word_l.len() - clean.len();
        if clean.eq_ignore_ascii_case("and") {
            toks.push(Tok::And);
        } else if clean.eq_ignore_ascii_case("or") {
            toks.push(Tok::Or);
        } else if clean.eq_ignore_ascii_case("not") {
            toks.push(Tok::Not);
        } else if !clean.is_empty() {
            // oslo tests the quotes before stripping the trailing parens.
            let b = word_l.as_bytes();
            if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[0] == b[b.len() - 1] {
                toks.push(Tok::Quoted(word_l));
            } else {
                toks.push(Tok::Check(clean));
            }
        }
        toks.extend(std::iter::repeat_n(Tok::RParen, trailing));
    }
    toks
}

/// Parses a check string; `intern` maps a `rule:` name to its rule id.
pub(crate) fn parse(text: &str, intern: &mut dyn FnMut(&str) -> RuleId) -> Result<Node, String> {
    if text.is_empty() {
        return Ok(Node::True);
    }
    let toks = tokenize(text);
    if toks.is_empty() {
        return Err(
            "check string contains only whitespace (use \"\" or \"@\" to allow all)".into(),
        );
    }
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        intern,
    };
    let node = p.or_expr(0)?;
    match p.peek() {
        None => Ok(node),
        Some(tok) => Err(format!("unexpected {tok} after a complete expression")),
    }
}

struct Parser<'t, 'a, 'i> {
    toks: &'t [Tok<'a>],
    pos: usize,
    intern: &'i mut dyn FnMut(&str) -> RuleId,
}

impl Parser<'_, '_, '_> {
    fn peek(&self) -> Option<Tok<'_>> {
        self.toks.get(self.pos).copied()
    }

    fn or_expr(&mut self, depth: usize) -> Result<Node, String> {
        let first = self.and_expr(depth)?;
        if self.peek() != Some(Tok::Or) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek() == Some(Tok::Or) {
            self.pos += 1;
            items.push(self.and_expr(depth)?);
        }
        Ok(Node::Or(items.into_boxed_slice()))
    }

    fn and_expr(&mut self, depth: usize) -> Result<Node, String> {
        let first = self.unary(depth)?;
        if self.peek() != Some(Tok::And) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek() == Some(Tok::And) {
            self.pos += 1;
            items.push(self.unary(depth)?);
        }
        Ok(Node::And(items.into_boxed_slice()))
    }

    fn unary(&mut self, depth: usize) -> Result<Node, String> {
        if depth >= MAX_NESTING {
            return Err(format!(
                "parentheses and `not` nest deeper than {MAX_NESTING} levels"
            ));
        }
        let tok = self.toks.get(self.pos).copied();
        self.pos += 1;
        match tok {
            Some(Tok::Not) => Ok(Node::Not(Box::new(self.unary(depth + 1)?))),
            Some(Tok::LParen) => {
                let inner = self.or_expr(depth + 1)?;
                match self.peek() {
                    Some(Tok::RParen) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    Some(tok) => Err(format!("expected `)`, found {tok}")),
                    None => Err("missing `)`".into()),
                }
            }
            Some(Tok::Check(text)) => parse_check(text, self.intern),
            Some(Tok::Quoted(text)) => Err(format!(
                "a quoted string ({text}) is not a check; write KIND:MATCH"
            )),
            Some(tok) => Err(format!("expected a check, found {tok}")),
            None => Err("expected a check, found end of text".into()),
        }
    }
}

/// Parses one base check (`@`, `!`, `KIND:MATCH`).
fn parse_check(text: &str, intern: &mut dyn FnMut(&str) -> RuleId) -> Result<Node, String> {
    match text {
        "!" => return Ok(Node::False),
        "@" => return Ok(Node::True),
        _ => {}
    }
    let Some((kind, matched)) = text.split_once(':') else {
        return Err(format!(
            "`{text}` is not a check: expected KIND:MATCH, `@` or `!`"
        ));
    };
    Ok(match kind {
        "rule" => Node::Rule {
            id: intern(matched),
            name: matched.into(),
        },
        "role" => Node::Role(parse_template(matched).map_err(|e| format!("`{text}`: {e}"))?),
        "http" | "https" => Node::External {
            kind: kind.into(),
            target: matched.into(),
        },
        _ => {
            let k = match parse_literal(kind).map_err(|e| format!("`{text}`: {e}"))? {
                Some(lit) => Kind::Literal(lit.into()),
                None => Kind::Path(kind.split('.').map(Into::into).collect()),
            };
            Node::Generic {
                kind: k,
                raw_kind: kind.into(),
                matcher: parse_template(matched).map_err(|e| format!("`{text}`: {e}"))?,
            }
        }
    })
}

/// Parses the Python `%`-format template used on the right-hand side of a
/// check. Only `%(name)s` and `%%` are supported (anything else would make
/// Python's `%` raise at enforcement time).
pub(crate) fn parse_template(s: &str) -> Result<Template, String> {
    if !s.contains('%') {
        return Ok(Template::Literal(s.into()));
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        text.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            text.push('%');
            rest = r;
            continue;
        }
        let Some(r) = rest.strip_prefix('(') else {
            return Err("`%` must be followed by `(name)s` or `%`".into());
        };
        // Python allows balanced parentheses inside the key.
        let mut depth = 1usize;
        let mut end = None;
        for (j, c) in r.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            return Err("unterminated `%(` substitution".into());
        };
        let key = &r[..end];
        let after = &r[end + 1..];
        let Some(after) = after.strip_prefix('s') else {
            return Err(format!(
                "unsupported substitution `%({key}){}`: only `%(name)s` is supported",
                after.chars().next().map(String::from).unwrap_or_default()
            ));
        };
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut text).into()));
        }
        parts.push(Part::Key(key.into()));
        rest = after;
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(Part::Text(text.into()));
    }
    Ok(match parts.as_slice() {
        [] => Template::Literal("".into()),
        [Part::Text(t)] => Template::Literal(t.clone()),
        [Part::Key(k)] => Template::Key(k.clone()),
        _ => Template::Parts(parts.into_boxed_slice()),
    })
}

/// Interprets a generic check's kind as a Python literal, as oslo does with
/// `ast.literal_eval`. Returns Python's `str()` of the literal, `None` when
/// the kind is not a literal (then it is a credentials path).
///
/// Supported: `True`, `False`, `None`, quoted strings (with optional `u`/`r`
/// prefix and the usual escapes), integers (decimal, hex, octal, binary, with
/// underscores and an optional sign) and floats.
pub(crate) fn parse_literal(kind: &str) -> Result<Option<String>, String> {
    match kind {
        "True" | "False" | "None" => return Ok(Some(kind.to_owned())),
        _ => {}
    }
    let (prefix, body) = match kind.as_bytes() {
        [b'u' | b'U' | b'r' | b'R', b'\'' | b'"', ..] => (kind.as_bytes()[0], &kind[1..]),
        _ => (0, kind),
    };
    if body.starts_with('\'') || body.starts_with('"') {
        return parse_string_literal(body, prefix == b'r' || prefix == b'R').map(Some);
    }
    let (negative, digits) = match kind.as_bytes().first() {
        Some(b'-') => (true, &kind[1..]),
        Some(b'+') => (false, &kind[1..]),
        _ => (false, kind),
    };
    Ok(parse_number(digits).map(|n| match n {
        Number::Int(s) if negative && s != "0" => format!("-{s}"),
        Number::Int(s) => s,
        Number::Float(f) => {
            let mut out = String::new();
            let _ = crate::pyval::write_float(if negative { -f } else { f }, &mut out);
            out
        }
    }))
}

enum Number {
    /// Decimal text of the integer, no leading zeros.
    Int(String),
    Float(f64),
}

/// Checks Python's digit-group rule: underscores only between digits.
fn valid_underscores(s: &str, is_digit: impl Fn(char) -> bool) -> bool {
    !s.is_empty()
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
        && s.chars().all(|c| c == '_' || is_digit(c))
}

fn parse_number(s: &str) -> Option<Number> {
    let lower = s.to_ascii_lowercase();
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let rest = rest.strip_prefix('_').unwrap_or(rest);
            if !valid_underscores(rest, |c| c.is_digit(radix)) {
                return None;
            }
            let v = u128::from_str_radix(&rest.replace('_', ""), radix).ok()?;
            return Some(Number::Int(v.to_string()));
        }
    }
    if valid_underscores(s, |c| c.is_ascii_digit()) {
        let digits = s.replace('_', "");
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            return Some(Number::Int("0".into()));
        }
        // Python rejects decimal integers with leading zeros ("01").
        if trimmed.len() != digits.len() {
            return None;
        }
        return Some(Number::Int(trimmed.to_owned()));
    }
    // Floats: digits with a '.' and/or an exponent.
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (lower.as_str(), None),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    if frac_part.is_none() && exponent.is_none() {
        return None;
    }
    let digits_ok = |p: &str| p.is_empty() || valid_underscores(p, |c| c.is_ascii_digit());
    if int_part.is_empty() && frac_part.is_none_or(str::is_empty) {
        return None;
    }
    if !digits_ok(int_part) || !frac_part.is_none_or(digits_ok) {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if !valid_underscores(e, |c| c.is_ascii_digit()) {
            return None;
        }
    }
    lower
        .replace('_', "")
        .parse::<f64>()
        .ok()
        .map(Number::Float)
}

fn parse_string_literal(s: &str, raw: bool) -> Result<String, String> {
    let mut chars = s.chars();
    let quote = chars.next().ok_or("empty literal")?;
    let mut out = String::new();
    let bad = || format!("malformed string literal {s}");
    loop {
        let c = chars.next().ok_or_else(bad)?;
        if c == quote {
            break;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or_else(bad)?;
        if raw {
            out.push('\\');
            out.push(e);
            continue;
        }
        match e {
            '\\' | '\'' | '"' => out.push(e),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let mut peek = chars.clone();
                    match peek.next().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            chars = peek;
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(v).ok_or_else(bad)?);
            }
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.by_ref().take(n).collect();
                if hex.len() != n {
                    return Err(bad());
                }
                let v = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
                out.push(char::from_u32(v).ok_or_else(bad)?);
            }
            // Python keeps unknown escapes verbatim.
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    if chars.next().is_some() {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<String, String> {
        let mut names = Vec::<String>::new();
        parse(text, &mut |n| {
            names.push(n.to_owned());
            (names.len() - 1) as RuleId
        })
        .map(|n| n.to_string())
    }

    #[test]
    fn precedence_matches_oslo() {
        // Expected strings are oslo.policy's str() of the parsed tree
        // (oslo_policy/tests/test_parser.py).
        let cases = [
            ("@ or ! or @", "(@ or ! or @)"),
            ("@ or ! and @", "(@ or (! and @))"),
            ("@ and ! or @", "((@ and !) or @)"),
            ("@ and ! and @", "(@ and ! and @)"),
            ("@ or ! or @ and !", "(@ or ! or (@ and !))"),
            ("@ or ! and @ or !", "(@ or (! and @) or !)"),
            ("@ or ! and @ and !", "(@ or (! and @ and !))"),
            ("@ and ! or @ or !", "((@ and !) or @ or !)"),
            ("@ and ! or @ and !", "((@ and !) or (@ and !))"),
            ("@ and ! and @ or !", "((@ and ! and @) or !)"),
            ("not @ and ! or @", "((not @ and !) or @)"),
            ("@ and not ! or @", "((@ and not !) or @)"),
            ("@ and ! or not @", "((@ and !) or not @)"),
            ("@ and ( ! or @ )", "(@ and (! or @))"),
            ("not @ and ( ! or @ )", "(not @ and (! or @))"),
            ("not ( @ and ! or @ )", "not ((@ and !) or @)"),
            ("@ and ( not ! or @ )", "(@ and (not ! or @))"),
            ("@ and not ( ! or @ )", "(@ and not (! or @))"),
            ("@ and ( ! or not @ )", "(@ and (! or not @))"),
            ("not not @", "not not @"),
            ("(not @)", "not @"),
        ];
        for (text, expected) in cases {
            assert_eq!(p(text).unwrap(), expected, "{text}");
        }
        for text in [
            "( @ ) and ! or @",
            "@ and ( ! ) or @",
            "@ and ! or ( @ )",
            "( @ ) and ( ! ) or ( @ )",
            "( @ and ! ) or @",
            "( ( @ ) and ! ) or @",
            "( @ and ( ! ) ) or @",
            "( ( @ and ! ) ) or @",
            "( @ and ! or @ )",
            "((@ and !) or @)",
            "@ AND ! Or @",
        ] {
            assert_eq!(p(text).unwrap(), "((@ and !) or @)", "{text}");
        }
    }

    #[test]
    fn checks_and_parens_in_words() {
        assert_eq!(
            p("(role:admin or ((project_id:%(project_id)s)))").unwrap(),
            "(role:admin or project_id:%(project_id)s)"
        );
        assert_eq!(p("rule:a:b").unwrap(), "rule:a:b");
        assert_eq!(p("").unwrap(), "@");
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "   ",
            "role:a role:b",
            "and role:a",
            "role:a and",
            "role:a or",
            "not",
            "(role:a",
            "role:a)",
            "()",
            "admin",
            "'quoted'",
            "role:a and 'x'",
            "a:%(x)d",
            "a:50%",
            "a:%(x",
            "'unterminated:x",
        ] {
            assert!(p(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn nesting_limit() {
        let deep = format!("{}@{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(p(&deep).unwrap_err().contains("nest"));
        let nots = format!("{}@", "not ".repeat(10_000));
        assert!(p(&nots).is_err());
        let ok = format!("{}@{}", "(".repeat(20), ")".repeat(20));
        assert_eq!(p(&ok).unwrap(), "@");
    }

    #[test]
    fn templates() {
        assert_eq!(
            parse_template("abc").unwrap(),
            Template::Literal("abc".into())
        );
        assert_eq!(
            parse_template("a%%b").unwrap(),
            Template::Literal("a%b".into())
        );
        assert_eq!(
            parse_template("%(a.b)s").unwrap(),
            Template::Key("a.b".into())
        );
        assert_eq!(
            parse_template("x-%(k)s").unwrap(),
            Template::Parts(vec![Part::Text("x-".into()), Part::Key("k".into())].into())
        );
        assert_eq!(
            parse_template("%(f(x))s").unwrap(),
            Template::Key("f(x)".into())
        );
    }

    #[test]
    fn literals() {
        let lit = |s: &str| parse_literal(s).unwrap();
        assert_eq!(lit("True").as_deref(), Some("True"));
        assert_eq!(lit("None").as_deref(), Some("None"));
        assert_eq!(lit("'member'").as_deref(), Some("member"));
        assert_eq!(lit("\"Member\"").as_deref(), Some("Member"));
        assert_eq!(lit("u'x\\ty'").as_deref(), Some("x\ty"));
        assert_eq!(lit("r'a\\b'").as_deref(), Some("a\\b"));
        assert_eq!(lit("1").as_deref(), Some("1"));
        assert_eq!(lit("-1").as_deref(), Some("-1"));
        assert_eq!(lit("-0").as_deref(), Some("0"));
        assert_eq!(lit("1_000").as_deref(), Some("1000"));
        assert_eq!(lit("0x1F").as_deref(), Some("31"));
        assert_eq!(lit("1.50").as_deref(), Some("1.5"));
        assert_eq!(lit("1e3").as_deref(), Some("1000.0"));
        assert_eq!(lit("is_admin"), None);
        assert_eq!(lit("token.domain.id"), None);
        assert_eq!(lit("01"), None);
        assert_eq!(lit("1.2.3"), None);
        assert_eq!(lit("inf"), None);
        assert!(parse_literal("'abc").is_err());
        assert!(parse_literal("'a'b'").is_err());
    }
}
