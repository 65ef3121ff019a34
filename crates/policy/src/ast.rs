//! Pre-parsed check trees.

use std::fmt;

/// Index of a rule in the enforcer's rule table (names are interned at parse
/// time so `rule:` references never hash or compare strings when evaluated).
pub(crate) type RuleId = u32;

/// A parsed check expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// `@` or the empty string.
    True,
    /// `!`.
    False,
    Not(Box<Node>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    /// `rule:NAME`; `id` indexes the rule table, `name` is kept for display.
    Rule {
        id: RuleId,
        name: Box<str>,
    },
    /// `role:NAME` (case-insensitive; NAME may contain substitutions).
    Role(Template),
    /// `KIND:MATCH` generic check.
    Generic {
        kind: Kind,
        raw_kind: Box<str>,
        matcher: Template,
    },
    /// `http:`/`https:` remote checks: unsupported, always false.
    External {
        kind: Box<str>,
        target: Box<str>,
    },
}

/// Left-hand side of a generic check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A Python literal (`True`, `'member'`, `1`): holds Python's `str()` of it.
    Literal(Box<str>),
    /// A dotted path into the credentials.
    Path(Box<[Box<str>]>),
}

/// A `%(key)s` template evaluated against the target.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Template {
    /// No substitutions (`%%` already unescaped).
    Literal(Box<str>),
    /// Exactly `%(key)s`: the target value itself (no allocation needed).
    Key(Box<str>),
    /// Anything else: literal text mixed with substitutions.
    Parts(Box<[Part]>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Text(Box<str>),
    Key(Box<str>),
}

impl Node {
    /// Calls `f` with every rule id referenced by this tree.
    pub(crate) fn for_each_ref(&self, f: &mut impl FnMut(RuleId)) {
        match self {
            Node::Rule { id, .. } => f(*id),
            Node::Not(inner) => inner.for_each_ref(f),
            Node::And(items) | Node::Or(items) => {
                for item in items.iter() {
                    item.for_each_ref(f);
                }
            }
            _ => {}
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn escape(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
            f.write_str(&s.replace('%', "%%"))
        }
        match self {
            Template::Literal(s) => escape(f, s),
            Template::Key(k) => write!(f, "%({k})s"),
            Template::Parts(parts) => {
                for part in parts.iter() {
                    match part {
                        Part::Text(s) => escape(f, s)?,
                        Part::Key(k) => write!(f, "%({k})s")?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// Renders like oslo.policy's `str(check)`: `(a and b)`, `(a or b)`, `not a`.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn join(f: &mut fmt::Formatter<'_>, items: &[Node], op: &str) -> fmt::Result {
            f.write_str("(")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(")")
        }
        match self {
            Node::True => f.write_str("@"),
            Node::False => f.write_str("!"),
            Node::Not(inner) => write!(f, "not {inner}"),
            Node::And(items) => join(f, items, "and"),
            Node::Or(items) => join(f, items, "or"),
            Node::Rule { name, .. } => write!(f, "rule:{name}"),
            Node::Role(t) => write!(f, "role:{t}"),
            Node::Generic {
                raw_kind, matcher, ..
            } => write!(f, "{raw_kind}:{matcher}"),
            Node::External { kind, target } => write!(f, "{kind}:{target}"),
        }
    }
}
