use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

use crate::ast::{Node, RuleId};
use crate::error::PolicyError;
use crate::eval::{Eval, RuleTable};
use crate::parser;
use crate::pyval;

/// A default rule registered by a service (as oslo.policy's
/// `DocumentedRuleDefault`).
#[derive(Debug, Clone, Copy)]
pub struct RuleDefault {
    /// Rule (action) name, e.g. `identity:get_user`.
    pub name: &'static str,
    /// Check string in the oslo.policy language.
    pub check_str: &'static str,
    /// Human-readable description (shown by [`Enforcer::dump`]).
    pub description: &'static str,
    /// Token scopes allowed for the action (`system`, `domain`, `project`);
    /// empty means any.
    pub scope_types: &'static [&'static str],
}

/// File-level errors are reported under this pseudo rule name.
const FILE_RULE: &str = "(policy file)";

#[derive(Debug, Clone)]
struct Parsed {
    source: Box<str>,
    node: Node,
}

#[derive(Debug, Clone)]
struct Entry {
    name: Box<str>,
    default: Option<(RuleDefault, Parsed)>,
    custom: Option<Parsed>,
}

impl Entry {
    fn effective(&self) -> Option<&Parsed> {
        self.custom
            .as_ref()
            .or(self.default.as_ref().map(|(_, p)| p))
    }
}

#[derive(Debug, Clone, Default)]
struct Table {
    /// Every name ever seen (registered, overridden or merely referenced by
    /// `rule:`); ids index this vector and never change.
    entries: Vec<Entry>,
    index: BTreeMap<Box<str>, RuleId>,
}

impl Table {
    fn intern(&mut self, name: &str) -> RuleId {
        if let Some(id) = self.index.get(name) {
            return *id;
        }
        let id = RuleId::try_from(self.entries.len()).expect("fewer than 2^32 policy rules");
        self.entries.push(Entry {
            name: name.into(),
            default: None,
            custom: None,
        });
        self.index.insert(name.into(), id);
        id
    }

    fn parse(&mut self, rule: &str, text: &str) -> Result<Parsed, PolicyError> {
        let node =
            parser::parse(text, &mut |n| self.intern(n)).map_err(|message| PolicyError::Parse {
                rule: rule.to_owned(),
                message,
            })?;
        Ok(Parsed {
            source: text.into(),
            node,
        })
    }

    fn get(&self, name: &str) -> Option<&Entry> {
        self.index.get(name).map(|id| &self.entries[*id as usize])
    }
}

impl RuleTable for Table {
    fn check(&self, id: RuleId) -> Option<&Node> {
        self.entries[id as usize].effective().map(|p| &p.node)
    }

    fn name(&self, id: RuleId) -> &str {
        &self.entries[id as usize].name
    }
}

/// Holds registered defaults and operator overrides, and enforces them.
///
/// Check strings are parsed once (at [`register`](Self::register) /
/// [`load_overrides`](Self::load_overrides)); enforcement only walks the
/// pre-parsed tree. `Send + Sync`: build it once, then share it behind an
/// `Arc`.
#[derive(Debug, Clone)]
pub struct Enforcer {
    enforce_scope: bool,
    table: Table,
}

/// The scope of the token described by `creds`: `system` when
/// `system_scope` (or the legacy `system`) is set, `domain` when `domain_id`
/// is set without a `project_id`, `project` when `project_id` is set, and
/// `None` for an unscoped token.
pub fn token_scope(creds: &Value) -> Option<&'static str> {
    if pyval::truthy(creds.get("system_scope")) || pyval::truthy(creds.get("system")) {
        Some("system")
    } else if pyval::truthy(creds.get("project_id")) {
        Some("project")
    } else if pyval::truthy(creds.get("domain_id")) {
        Some("domain")
    } else {
        None
    }
}

impl Enforcer {
    /// An empty enforcer. With `enforce_scope`, a request whose token scope
    /// is not in the rule's `scope_types` fails with
    /// [`PolicyError::InvalidScope`]; without it the mismatch is only logged.
    pub fn new(enforce_scope: bool) -> Self {
        Enforcer {
            enforce_scope,
            table: Table::default(),
        }
    }

    /// Whether scope types are enforced.
    pub fn enforce_scope(&self) -> bool {
        self.enforce_scope
    }

    /// Register defaults; a check string that does not parse is an error
    /// naming the rule, as is registering a name twice. Nothing is
    /// registered when an error is returned.
    pub fn register(&mut self, defaults: &[RuleDefault]) -> Result<(), PolicyError> {
        let mut staged = self.table.clone();
        let mut seen = HashSet::new();
        for d in defaults {
            // Services share base rules (`context_is_admin` in Glance, Nova, Placement...): the
            // same name with the same check string is one rule; a different check string is
            // an error.
            let identical = staged
                .get(d.name)
                .and_then(|e| e.default.as_ref())
                .is_some_and(|(existing, _)| existing.check_str == d.check_str);
            if identical && seen.insert(d.name) {
                continue;
            }
            let duplicate =
                !seen.insert(d.name) || staged.get(d.name).is_some_and(|e| e.default.is_some());
            if duplicate {
                return Err(PolicyError::Parse {
                    rule: d.name.to_owned(),
                    message: "policy is already registered".into(),
                });
            }
            let parsed = staged.parse(d.name, d.check_str)?;
            let id = staged.intern(d.name);
            staged.entries[id as usize].default = Some((*d, parsed));
        }
        self.table = staged;
        Ok(())
    }

    /// Operator overrides from a policy.yaml (a mapping rule-name -> check
    /// string; JSON is accepted too since it is YAML). A `null` value means
    /// the empty check string (always allowed), as in oslo.policy.
    /// Overrides of unknown names are kept (they may be referenced by
    /// `rule:`); a parse error names the rule. Later loads replace earlier
    /// overrides rule by rule; nothing is applied when an error is returned.
    pub fn load_overrides(&mut self, yaml_text: &str) -> Result<(), PolicyError> {
        let file_err = |message: String| PolicyError::Parse {
            rule: FILE_RULE.to_owned(),
            message,
        };
        let docs = YamlLoader::load_from_str(yaml_text)
            .map_err(|e| file_err(format!("invalid YAML: {e}")))?;
        let mapping = match docs.as_slice() {
            [] | [Yaml::Null] => return Ok(()),
            [Yaml::Hash(h)] => h,
            [_] => {
                return Err(file_err(
                    "top level must be a mapping of rule names to check strings".into(),
                ));
            }
            _ => return Err(file_err("expected a single YAML document".into())),
        };
        let mut staged = self.table.clone();
        let mut parsed = Vec::with_capacity(mapping.len());
        for (key, value) in mapping {
            let Yaml::String(name) = key else {
                return Err(file_err(format!("rule name {key:?} is not a string")));
            };
            let text = match value {
                Yaml::String(s) => s.as_str(),
                Yaml::Null => "",
                other => {
                    return Err(PolicyError::Parse {
                        rule: name.clone(),
                        message: format!("check string must be a string, found {other:?}"),
                    });
                }
            };
            let p = staged.parse(name, text)?;
            parsed.push((staged.intern(name), p));
        }
        for (id, p) in parsed {
            staged.entries[id as usize].custom = Some(p);
        }
        self.table = staged;
        Ok(())
    }

    /// [`load_overrides`](Self::load_overrides) from a file.
    pub fn load_overrides_file(&mut self, path: &Path) -> Result<(), PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        self.load_overrides(&text)
    }

    /// `Err(PolicyError::Forbidden{action})` when denied,
    /// `Err(PolicyError::NotRegistered)` for an unknown action (never
    /// silently allow), `Err(PolicyError::InvalidScope{..})` for a token of
    /// the wrong scope when scope enforcement is on.
    ///
    /// `creds` is the oslo.context-style policy dict (`user_id`,
    /// `project_id`, `domain_id`, `system_scope`, `roles`, ...); `target`
    /// holds the attributes of the object acted upon, flat
    /// (`{"target.user.id": ..}`) or nested (`{"target": {"user": ..}}`).
    pub fn enforce(&self, action: &str, target: &Value, creds: &Value) -> Result<(), PolicyError> {
        let not_registered = || PolicyError::NotRegistered(action.to_owned());
        let id = *self.table.index.get(action).ok_or_else(not_registered)?;
        let entry = &self.table.entries[id as usize];
        let (default, _) = entry.default.as_ref().ok_or_else(not_registered)?;
        if !default.scope_types.is_empty() {
            let scope = token_scope(creds);
            if !scope.is_some_and(|s| default.scope_types.contains(&s)) {
                let token_scope = scope.unwrap_or("unscoped");
                if self.enforce_scope {
                    return Err(PolicyError::InvalidScope {
                        action: action.to_owned(),
                        required: default
                            .scope_types
                            .iter()
                            .map(|s| (*s).to_owned())
                            .collect(),
                        token_scope: token_scope.to_owned(),
                    });
                }
                tracing::debug!(
                    action,
                    token_scope,
                    scope_types = ?default.scope_types,
                    "policy scope check failed (not enforced)"
                );
            }
        }
        if Eval::new(&self.table, target, creds).run(id) {
            Ok(())
        } else {
            Err(PolicyError::Forbidden {
                action: action.to_owned(),
            })
        }
    }

    /// `true` when [`enforce`](Self::enforce) succeeds; any error (including
    /// an unregistered action) is `false`.
    pub fn authorize(&self, action: &str, target: &Value, creds: &Value) -> bool {
        self.enforce(action, target, creds).is_ok()
    }

    /// Names of all effective rules (registered defaults and overrides),
    /// sorted.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.table
            .index
            .iter()
            .filter(|(_, id)| self.table.entries[**id as usize].effective().is_some())
            .map(|(name, _)| &**name)
    }

    /// Whether `name` was registered as a default.
    pub fn is_registered(&self, name: &str) -> bool {
        self.table.get(name).is_some_and(|e| e.default.is_some())
    }

    /// The effective check string of a rule (override, else default).
    pub fn check_str(&self, name: &str) -> Option<&str> {
        self.table
            .get(name)
            .and_then(Entry::effective)
            .map(|p| &*p.source)
    }

    /// The registered default of a rule.
    pub fn default_rule(&self, name: &str) -> Option<&RuleDefault> {
        self.table
            .get(name)
            .and_then(|e| e.default.as_ref())
            .map(|(d, _)| d)
    }

    /// The effective rules as YAML text (for a `policy show`-like command),
    /// sorted by name. Registered rules are preceded by their description
    /// (and, when overridden, their default) as comments. The output can be
    /// fed back to [`load_overrides`](Self::load_overrides).
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for (name, id) in &self.table.index {
            let entry = &self.table.entries[*id as usize];
            let Some(effective) = entry.effective() else {
                continue;
            };
            if !out.is_empty() {
                out.push('\n');
            }
            if let Some((default, parsed)) = &entry.default {
                for line in default.description.lines() {
                    let line = line.trim_end();
                    let _ = writeln!(out, "#{}{line}", if line.is_empty() { "" } else { " " });
                }
                if !default.scope_types.is_empty() {
                    let _ = writeln!(out, "# scope_types: {}", default.scope_types.join(", "));
                }
                if entry.custom.is_some() {
                    let _ = writeln!(out, "# default: {}", json_str(&parsed.source));
                }
            } else {
                out.push_str("# not a registered policy\n");
            }
            let _ = writeln!(out, "{}: {}", json_str(name), json_str(&effective.source));
        }
        out
    }

    /// Problems in the effective rules, like oslo.policy's `check_rules`:
    /// references to undefined rules and `rule:` reference cycles (each
    /// cycle reported once). Empty when everything is fine.
    pub fn validate(&self) -> Vec<String> {
        let entries = &self.table.entries;
        let mut problems = Vec::new();
        // Edges between effective rules, in name order for stable output.
        let mut edges: Vec<Vec<RuleId>> = vec![Vec::new(); entries.len()];
        for (name, id) in &self.table.index {
            let Some(p) = entries[*id as usize].effective() else {
                continue;
            };
            let mut refs = Vec::new();
            p.node.for_each_ref(&mut |r| {
                if !refs.contains(&r) {
                    refs.push(r);
                }
            });
            for r in &refs {
                if entries[*r as usize].effective().is_none() {
                    problems.push(format!(
                        "rule {:?} references undefined rule {:?}",
                        &**name, &*entries[*r as usize].name
                    ));
                }
            }
            refs.retain(|r| entries[*r as usize].effective().is_some());
            refs.sort_by(|a, b| entries[*a as usize].name.cmp(&entries[*b as usize].name));
            edges[*id as usize] = refs;
        }

        // Iterative DFS; a back edge to a node on the path closes a cycle.
        #[derive(Clone, Copy, PartialEq)]
        enum Color {
            White,
            Gray,
            Black,
        }
        let mut color = vec![Color::White; entries.len()];
        let mut reported = HashSet::new();
        for start in self.table.index.values() {
            if color[*start as usize] != Color::White {
                continue;
            }
            let mut path: Vec<(RuleId, usize)> = vec![(*start, 0)];
            color[*start as usize] = Color::Gray;
            while let Some((node, next)) = path.last_mut() {
                let node = *node;
                let Some(&child) = edges[node as usize].get(*next) else {
                    color[node as usize] = Color::Black;
                    path.pop();
                    continue;
                };
                *next += 1;
                match color[child as usize] {
                    Color::White => {
                        color[child as usize] = Color::Gray;
                        path.push((child, 0));
                    }
                    Color::Gray => {
                        let pos = path.iter().position(|(n, _)| *n == child).unwrap_or(0);
                        let mut cycle: Vec<RuleId> = path[pos..].iter().map(|(n, _)| *n).collect();
                        // Rotate so the smallest name leads: one report per cycle.
                        let min = (0..cycle.len())
                            .min_by_key(|i| &entries[cycle[*i] as usize].name)
                            .unwrap_or(0);
                        cycle.rotate_left(min);
                        if reported.insert(cycle.clone()) {
                            let mut names: Vec<&str> =
                                cycle.iter().map(|n| &*entries[*n as usize].name).collect();
                            names.push(names[0]);
                            problems.push(format!("cyclic rule reference: {}", names.join(" -> ")));
                        }
                    }
                    Color::Black => {}
                }
            }
        }
        problems
    }
}

/// A JSON string literal, which is also a valid YAML double-quoted scalar.
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}
