//! Evaluation of pre-parsed check trees against a target and credentials.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::ast::{Kind, Node, Part, RuleId, Template};
use crate::pyval;

/// Maximum chain of `rule:` references followed during one evaluation.
pub(crate) const MAX_RULE_DEPTH: usize = 20;

/// Gives the evaluator access to the effective check of a rule.
pub(crate) trait RuleTable {
    fn check(&self, id: RuleId) -> Option<&Node>;
    fn name(&self, id: RuleId) -> &str;
}

static HTTP_WARNED: AtomicBool = AtomicBool::new(false);
static CYCLE_WARNED: AtomicBool = AtomicBool::new(false);
static DEPTH_WARNED: AtomicBool = AtomicBool::new(false);

/// Logs at warn level the first time a flag fires, at debug level afterwards.
macro_rules! warn_once {
    ($flag:expr, $($arg:tt)+) => {
        if !$flag.swap(true, Ordering::Relaxed) {
            tracing::warn!($($arg)+);
        } else {
            tracing::debug!($($arg)+);
        }
    };
}

pub(crate) struct Eval<'a, T: RuleTable> {
    rules: &'a T,
    target: &'a Value,
    creds: &'a Value,
    /// Rules currently being evaluated (for cycle detection); fixed size so
    /// evaluation never allocates for it.
    stack: [RuleId; MAX_RULE_DEPTH],
    len: usize,
    /// Set when a cycle or the depth limit is hit: the whole evaluation then
    /// denies (a local `false` could be inverted by `not`).
    aborted: bool,
}

impl<'a, T: RuleTable> Eval<'a, T> {
    pub(crate) fn new(rules: &'a T, target: &'a Value, creds: &'a Value) -> Self {
        Eval {
            rules,
            target,
            creds,
            stack: [0; MAX_RULE_DEPTH],
            len: 0,
            aborted: false,
        }
    }

    /// Evaluates the rule `id` as a whole: false when it has no check, or
    /// when evaluation reached a reference cycle or the depth limit.
    pub(crate) fn run(mut self, id: RuleId) -> bool {
        let result = self.rule(id);
        result && !self.aborted
    }

    fn rule(&mut self, id: RuleId) -> bool {
        if self.stack[..self.len].contains(&id) {
            // Re-entering a rule with the same inputs can only recurse
            // forever (oslo would raise RecursionError): fail closed.
            self.aborted = true;
            warn_once!(
                CYCLE_WARNED,
                rule = self.rules.name(id),
                "policy rule references itself through a cycle; treating as denied"
            );
            return false;
        }
        if self.len == MAX_RULE_DEPTH {
            self.aborted = true;
            warn_once!(
                DEPTH_WARNED,
                rule = self.rules.name(id),
                "policy rule references nest deeper than {MAX_RULE_DEPTH}; treating as denied"
            );
            return false;
        }
        let rules = self.rules;
        let Some(node) = rules.check(id) else {
            return false;
        };
        self.stack[self.len] = id;
        self.len += 1;
        let result = self.node(node);
        self.len -= 1;
        result
    }

    fn node(&mut self, node: &Node) -> bool {
        if self.aborted {
            return false;
        }
        match node {
            Node::True => true,
            Node::False => false,
            Node::Not(inner) => !self.node(inner),
            Node::And(items) => items.iter().all(|n| self.node(n)),
            Node::Or(items) => items.iter().any(|n| self.node(n)),
            Node::Rule { id, .. } => self.rule(*id),
            Node::Role(template) => {
                let Some(wanted) = resolve(template, self.target) else {
                    return false;
                };
                let Some(roles) = self.creds.get("roles").and_then(Value::as_array) else {
                    return false;
                };
                wanted.with_str(|wanted| {
                    roles
                        .iter()
                        .filter_map(Value::as_str)
                        .any(|r| pyval::eq_lower(r, wanted))
                })
            }
            Node::Generic { kind, matcher, .. } => {
                let Some(wanted) = resolve(matcher, self.target) else {
                    return false;
                };
                match kind {
                    Kind::Literal(lit) => wanted.eq_str(lit),
                    Kind::Path(path) => find_in_creds(self.creds, path, &wanted, true),
                }
            }
            Node::External { kind, target } => {
                warn_once!(
                    HTTP_WARNED,
                    check = %format_args!("{kind}:{target}"),
                    "http/https policy checks are not supported; treating as denied"
                );
                false
            }
        }
    }
}

/// The right-hand side of a check after target substitution.
pub(crate) enum Resolved<'v> {
    Str(&'v str),
    Value(&'v Value),
    Owned(String),
}

impl Resolved<'_> {
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Resolved::Str(s) => f(s),
            Resolved::Owned(s) => f(s),
            Resolved::Value(Value::String(s)) => f(s),
            Resolved::Value(v) => f(&pyval::to_py_string(v)),
        }
    }

    /// `self == s` comparing Python `str()` forms.
    fn eq_str(&self, s: &str) -> bool {
        match self {
            Resolved::Str(x) => *x == s,
            Resolved::Owned(x) => x == s,
            Resolved::Value(v) => pyval::str_eq(v, s),
        }
    }

    /// `self == str(v)`.
    fn eq_value(&self, v: &Value) -> bool {
        match self {
            Resolved::Str(x) => pyval::str_eq(v, x),
            Resolved::Owned(x) => pyval::str_eq(v, x),
            Resolved::Value(t) => pyval::values_eq(v, t),
        }
    }
}

/// Looks a substitution key up in the target: first as a literal (flat) key,
/// then as a dotted path through nested objects.
pub(crate) fn lookup_target<'v>(target: &'v Value, key: &str) -> Option<&'v Value> {
    let obj = target.as_object()?;
    if let Some(v) = obj.get(key) {
        return Some(v);
    }
    if !key.contains('.') {
        return None;
    }
    let mut cur = target;
    for seg in key.split('.') {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}

/// Applies `template % target`; `None` when a key is missing.
pub(crate) fn resolve<'v>(template: &'v Template, target: &'v Value) -> Option<Resolved<'v>> {
    match template {
        Template::Literal(s) => Some(Resolved::Str(s)),
        Template::Key(k) => lookup_target(target, k).map(Resolved::Value),
        Template::Parts(parts) => {
            let mut out = String::new();
            for part in parts.iter() {
                match part {
                    Part::Text(t) => out.push_str(t),
                    Part::Key(k) => {
                        let v = lookup_target(target, k)?;
                        // Writing into a String never fails.
                        let _ = pyval::write_str(v, &mut out);
                    }
                }
            }
            Some(Resolved::Owned(out))
        }
    }
}

/// oslo's `GenericCheck._find_in_dict`: walk `path` through `value`; a list
/// met along the way matches if any element matches the rest of the path.
fn find_in_creds(value: &Value, path: &[Box<str>], wanted: &Resolved<'_>, root: bool) -> bool {
    let Some((key, rest)) = path.split_first() else {
        return wanted.eq_value(value);
    };
    let Some(obj) = value.as_object() else {
        return false;
    };
    let next = match obj.get(&**key) {
        Some(v) => v,
        // oslo.policy copies `system_scope` into `creds["system"]`.
        None if root && &**key == "system" => match obj.get("system_scope") {
            Some(v) if pyval::truthy(Some(v)) => v,
            _ => return false,
        },
        None => return false,
    };
    match next {
        Value::Array(items) => items.iter().any(|v| find_in_creds(v, rest, wanted, false)),
        v => find_in_creds(v, rest, wanted, false),
    }
}
