//! Python `str()` semantics for JSON values.
//!
//! oslo.policy compares everything as `str(value)`; these helpers reproduce
//! that text for JSON values (`true` -> `True`, `null` -> `None`, floats as
//! Python's `repr`, lists and objects as Python reprs) and compare against it
//! without allocating for the common cases.

use std::fmt::{self, Write};

use serde_json::Value;

/// Writes Python's `str(v)` for a JSON value.
pub(crate) fn write_str<W: Write>(v: &Value, w: &mut W) -> fmt::Result {
    match v {
        Value::String(s) => w.write_str(s),
        _ => write_repr(v, w),
    }
}

/// Writes Python's `repr(v)` for a JSON value.
fn write_repr<W: Write>(v: &Value, w: &mut W) -> fmt::Result {
    match v {
        Value::Null => w.write_str("None"),
        Value::Bool(true) => w.write_str("True"),
        Value::Bool(false) => w.write_str("False"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                write!(w, "{i}")
            } else if let Some(u) = n.as_u64() {
                write!(w, "{u}")
            } else {
                write_float(n.as_f64().unwrap_or(f64::NAN), w)
            }
        }
        Value::String(s) => write_str_repr(s, w),
        Value::Array(items) => {
            w.write_char('[')?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.write_str(", ")?;
                }
                write_repr(item, w)?;
            }
            w.write_char(']')
        }
        Value::Object(map) => {
            w.write_char('{')?;
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    w.write_str(", ")?;
                }
                write_str_repr(k, w)?;
                w.write_str(": ")?;
                write_repr(item, w)?;
            }
            w.write_char('}')
        }
    }
}

/// Python's `repr()` of a `str`: single quotes unless the text contains a
/// single quote and no double quote.
fn write_str_repr<W: Write>(s: &str, w: &mut W) -> fmt::Result {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    w.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            c if c == quote => {
                w.write_char('\\')?;
                w.write_char(c)?;
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(w, "\\x{:02x}", c as u32)?,
            c => w.write_char(c)?,
        }
    }
    w.write_char(quote)
}

/// Python's `repr(float)`: shortest round-trip digits, fixed notation for
/// decimal exponents in `-4..16`, scientific (`1e+16`, `1.5e-07`) otherwise.
pub(crate) fn write_float<W: Write>(f: f64, w: &mut W) -> fmt::Result {
    if f.is_nan() {
        return w.write_str("nan");
    }
    if f.is_infinite() {
        return w.write_str(if f > 0.0 { "inf" } else { "-inf" });
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "-1.5e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        w.write_char('-')?;
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                w.write_str(&digits)?;
                for _ in digits.len()..int_len {
                    w.write_char('0')?;
                }
                w.write_str(".0")
            } else {
                w.write_str(&digits[..int_len])?;
                w.write_char('.')?;
                w.write_str(&digits[int_len..])
            }
        } else {
            w.write_str("0.")?;
            for _ in 0..(-exp - 1) {
                w.write_char('0')?;
            }
            w.write_str(&digits)
        }
    } else {
        w.write_str(&digits[..1])?;
        if digits.len() > 1 {
            w.write_char('.')?;
            w.write_str(&digits[1..])?;
        }
        let sign = if exp < 0 { '-' } else { '+' };
        write!(w, "e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Python's `str(v)` as an owned string.
pub(crate) fn to_py_string(v: &Value) -> String {
    let mut s = String::new();
    // Writing into a String never fails.
    let _ = write_str(v, &mut s);
    s
}

/// A `fmt::Write` sink that checks the written text equals `expected`
/// without allocating.
struct EqWriter<'a> {
    rest: &'a str,
}

impl Write for EqWriter<'_> {
    fn write_str(&mut self, chunk: &str) -> fmt::Result {
        match self.rest.strip_prefix(chunk) {
            Some(rest) => {
                self.rest = rest;
                Ok(())
            }
            None => Err(fmt::Error),
        }
    }
}

/// `str(v) == s` in Python terms.
pub(crate) fn str_eq(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Bool(true) => s == "True",
        Value::Bool(false) => s == "False",
        Value::Null => s == "None",
        _ => {
            let mut w = EqWriter { rest: s };
            write_str(v, &mut w).is_ok() && w.rest.is_empty()
        }
    }
}

/// `str(a) == str(b)` in Python terms.
pub(crate) fn values_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (_, Value::String(s)) => str_eq(a, s),
        (Value::String(s), _) => str_eq(b, s),
        _ => str_eq(a, &to_py_string(b)),
    }
}

/// Python's `a.lower() == b.lower()` without allocating.
pub(crate) fn eq_lower(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
    }
}

/// Python truthiness of a JSON value (used for scope detection).
pub(crate) fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(true)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn float(f: f64) -> String {
        let mut s = String::new();
        write_float(f, &mut s).unwrap();
        s
    }

    #[test]
    fn python_float_repr() {
        assert_eq!(float(1.0), "1.0");
        assert_eq!(float(-0.0), "-0.0");
        assert_eq!(float(0.0), "0.0");
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(123.456), "123.456");
        assert_eq!(float(1e15), "1000000000000000.0");
        assert_eq!(float(1e16), "1e+16");
        assert_eq!(float(1.5e-7), "1.5e-07");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.00001), "1e-05");
        assert_eq!(float(1e100), "1e+100");
    }

    #[test]
    fn python_str_of_values() {
        assert_eq!(to_py_string(&json!(true)), "True");
        assert_eq!(to_py_string(&json!(null)), "None");
        assert_eq!(to_py_string(&json!(42)), "42");
        assert_eq!(to_py_string(&json!(2.0)), "2.0");
        assert_eq!(to_py_string(&json!("x")), "x");
        assert_eq!(
            to_py_string(&json!(["a", 1, true, null, "it's"])),
            "['a', 1, True, None, \"it's\"]"
        );
        assert_eq!(to_py_string(&json!({"k": "v"})), "{'k': 'v'}");
    }

    #[test]
    fn comparisons() {
        assert!(str_eq(&json!(true), "True"));
        assert!(!str_eq(&json!(true), "true"));
        assert!(!str_eq(&json!(true), "1"));
        assert!(str_eq(&json!(1), "1"));
        assert!(!str_eq(&json!(1), "10"));
        assert!(!str_eq(&json!(10), "1"));
        assert!(str_eq(&json!(-7), "-7"));
        assert!(values_eq(&json!(3), &json!(3)));
        assert!(values_eq(&json!("3"), &json!(3)));
        assert!(!values_eq(&json!(3), &json!(3.0)));
        assert!(eq_lower("ReAdEr", "reader"));
        assert!(eq_lower("ÄDMIN", "ädmin"));
        assert!(!eq_lower("admin", "admins"));
    }
}
