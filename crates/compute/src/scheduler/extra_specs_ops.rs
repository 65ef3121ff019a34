//! The operators of flavor extra specs that filters compare host values with (Nova's
//! `nova/scheduler/filters/extra_specs_ops.py`).
//!
//! A requirement is `<op> <operand>` or a plain value: `= 4` (numerically at least), `== 4`,
//! `!= 4`, `>= 4`, `<= 4` (numeric), `s== a`, `s!= a`, `s< a`, `s<= a`, `s> a`, `s>= a`
//! (string order), `<in> a` (substring), `<all-in> a b` (every word a substring), and
//! `<or> a <or> b` (equal to one of the words). A requirement whose first word is no operator
//! must equal the value exactly.

/// Whether `value` (a host's or aggregate's value as text) meets `requirement`.
pub fn matches(value: &str, requirement: &str) -> bool {
    let mut words = requirement.split_whitespace();
    let Some(op) = words.next() else {
        return value == requirement;
    };
    let operands: Vec<&str> = words.collect();
    if op == "<or>" {
        // `<or> v1 <or> v2 ...`: every second word is an alternative.
        return operands.iter().step_by(2).any(|w| *w == value);
    }
    let Some(compare) = operator(op) else {
        return value == requirement;
    };
    match (compare, operands.first()) {
        (_, None) => false,
        (Compare::AllIn, Some(_)) => operands.iter().all(|w| value.contains(w)),
        (compare, Some(operand)) => compare.holds(value, operand),
    }
}

#[derive(Clone, Copy)]
enum Compare {
    /// Numeric comparisons (`=` is "at least").
    Number(fn(f64, f64) -> bool),
    /// String comparisons (by code point, as Python compares `str`).
    Text(fn(&str, &str) -> bool),
    In,
    AllIn,
}

fn operator(op: &str) -> Option<Compare> {
    Some(match op {
        "=" | ">=" => Compare::Number(|x, y| x >= y),
        "==" => Compare::Number(|x, y| x == y),
        "!=" => Compare::Number(|x, y| x != y),
        "<=" => Compare::Number(|x, y| x <= y),
        "s==" => Compare::Text(|x, y| x == y),
        "s!=" => Compare::Text(|x, y| x != y),
        "s<" => Compare::Text(|x, y| x < y),
        "s<=" => Compare::Text(|x, y| x <= y),
        "s>" => Compare::Text(|x, y| x > y),
        "s>=" => Compare::Text(|x, y| x >= y),
        "<in>" => Compare::In,
        "<all-in>" => Compare::AllIn,
        _ => return None,
    })
}

impl Compare {
    fn holds(self, value: &str, operand: &str) -> bool {
        match self {
            // A value or operand that is no number fails the requirement (Nova raises, which
            // fails the request).
            Compare::Number(f) => match (number(value), number(operand)) {
                (Some(x), Some(y)) => f(x, y),
                _ => false,
            },
            Compare::Text(f) => f(value, operand),
            Compare::In => value.contains(operand),
            Compare::AllIn => value.contains(operand),
        }
    }
}

/// Python's `float()` of a text: surrounding blanks allowed; `inf`, `infinity` and `nan` in
/// any case (as Rust's parser takes them too).
fn number(text: &str) -> Option<f64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn every_operator_as_nova_evaluates_it() {
        // (value, requirement, expected)
        let table: &[(&str, &str, bool)] = &[
            // A plain value must be equal, whole.
            ("true", "true", true),
            ("true", "True", false),
            ("1", "1.0", false),
            ("a b", "a b", true),
            ("", "", true),
            // `=` is "at least", numerically.
            ("4", "= 4", true),
            ("8", "= 4", true),
            ("2", "= 4", false),
            ("4.0", "= 4", true),
            ("abc", "= 4", false),
            ("4", "= x", false),
            // Numeric equality and order.
            ("4", "== 4.0", true),
            ("5", "== 4", false),
            ("5", "!= 4", true),
            ("4", "!= 4", false),
            ("5", ">= 5", true),
            ("4", ">= 5", false),
            ("4", "<= 5", true),
            ("6", "<= 5", false),
            ("1e3", ">= 999", true),
            (" 7 ", "== 7", true),
            ("INF", ">= 1e308", true),
            ("nan", "== nan", false),
            // String comparisons.
            ("QEMU", "s== QEMU", true),
            ("qemu", "s== QEMU", false),
            ("qemu", "s!= QEMU", true),
            ("QEMU", "s!= QEMU", false),
            ("abc", "s< abd", true),
            ("abd", "s< abd", false),
            ("abd", "s<= abd", true),
            ("abe", "s<= abd", false),
            ("b", "s> a", true),
            ("a", "s> a", false),
            ("a", "s>= a", true),
            ("10", "s>= 9", false),
            // Substrings.
            ("sse sse2 avx", "<in> avx", true),
            ("sse sse2", "<in> avx", false),
            ("['sse', 'avx']", "<all-in> sse avx", true),
            ("['sse']", "<all-in> sse avx", false),
            // One of several.
            ("b", "<or> a <or> b <or> c", true),
            ("d", "<or> a <or> b <or> c", false),
            ("a", "<or> a", true),
            ("<or>", "<or> x <or> y", false),
            ("x", "<or>", false),
            // An operator without operand never matches.
            ("4", "==", false),
            ("abc", "<in>", false),
            ("abc", "s==", false),
        ];
        for (value, requirement, expected) in table {
            assert_eq!(
                matches(value, requirement),
                *expected,
                "{value:?} against {requirement:?}"
            );
        }
    }
}
