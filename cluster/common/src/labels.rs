//! Node labels and label selectors, as Ray 2.49+ has them: a node carries `key=value` labels
//! (`raya start --labels region=us-west,disk=ssd`, or `Config::label`), and a task or actor may
//! require labels of the node it runs on (`label_selector("region", "us-west")`).
//!
//! A selector's value says how the node's label must read, in Ray's syntax:
//! `"us-west"` (equal), `"!us-west"` (absent or different), `"in(us-west,us-east)"` (one of
//! them), `"!in(us-west,us-east)"` (absent or none of them).
//!
//! ```
//! use std::collections::BTreeMap;
//! use raya_common::labels::LabelSelector;
//!
//! let mut s = LabelSelector::default();
//! s.require("region", "in(us-west,us-east)").unwrap();
//! s.require("disk", "!hdd").unwrap();
//! let node = BTreeMap::from([("region".to_string(), "us-east".to_string())]);
//! assert!(s.matches(&node));
//! assert!(s.require("region", "in()").is_err());
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A node's labels, by key.
pub type NodeLabels = BTreeMap<String, String>;

/// Labels on one node, at most.
pub const MAX_LABELS: usize = 64;

/// Constraints in one selector, and values in one `in(...)`, at most.
pub const MAX_CONSTRAINTS: usize = 64;

/// Values in all the constraints of one selector, at most.
pub const MAX_SELECTOR_VALUES: usize = 256;

/// The longest label key (a DNS-style prefix and `/` included, as Kubernetes allows).
pub const MAX_KEY_LEN: usize = 253;

/// The longest label value.
pub const MAX_VALUE_LEN: usize = 63;

/// How a node's label must read for one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LabelOp {
    /// Present, with one of these values.
    In(Vec<String>),
    /// Absent, or with none of these values.
    NotIn(Vec<String>),
}

/// What a task or actor requires of the labels of its node: every constraint holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelector(pub Vec<(String, LabelOp)>);

impl LabelSelector {
    /// Adds the constraint that label `key` reads as `expr` says (see the module docs).
    pub fn require(&mut self, key: &str, expr: &str) -> Result<(), String> {
        check_key(key)?;
        let (negated, rest) = match expr.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, expr),
        };
        let values: Vec<String> = match rest.strip_prefix("in(").and_then(|r| r.strip_suffix(')')) {
            Some(list) => list.split(',').map(|v| v.trim().to_string()).collect(),
            None => vec![rest.to_string()],
        };
        if values.len() > MAX_CONSTRAINTS {
            return Err(format!(
                "label selector {key}: {} values, more than {MAX_CONSTRAINTS}",
                values.len()
            ));
        }
        for v in &values {
            check_value(v).map_err(|e| format!("label selector {key}={expr:?}: {e}"))?;
        }
        if self.0.len() >= MAX_CONSTRAINTS {
            return Err(format!(
                "a label selector holds {MAX_CONSTRAINTS} constraints at most"
            ));
        }
        if self.values() + values.len() > MAX_SELECTOR_VALUES {
            return Err(format!(
                "a label selector holds {MAX_SELECTOR_VALUES} values at most"
            ));
        }
        let op = if negated {
            LabelOp::NotIn(values)
        } else {
            LabelOp::In(values)
        };
        self.0.push((key.to_string(), op));
        Ok(())
    }

    fn values(&self) -> usize {
        self.0
            .iter()
            .map(|(_, LabelOp::In(v) | LabelOp::NotIn(v))| v.len())
            .sum()
    }

    /// Whether the selector requires nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a node with `labels` satisfies every constraint.
    pub fn matches(&self, labels: &NodeLabels) -> bool {
        self.0.iter().all(|(key, op)| {
            let have = labels.get(key);
            match op {
                LabelOp::In(values) => have.is_some_and(|h| values.contains(h)),
                LabelOp::NotIn(values) => !have.is_some_and(|h| values.contains(h)),
            }
        })
    }

    /// Checks a selector that arrived from another node before it drives any matching.
    pub fn check(&self) -> Result<(), String> {
        if self.0.len() > MAX_CONSTRAINTS {
            return Err(format!(
                "{} label constraints, more than {MAX_CONSTRAINTS}",
                self.0.len()
            ));
        }
        if self.values() > MAX_SELECTOR_VALUES {
            return Err(format!(
                "{} label values, more than {MAX_SELECTOR_VALUES}",
                self.values()
            ));
        }
        for (key, op) in &self.0 {
            check_key(key)?;
            let (LabelOp::In(values) | LabelOp::NotIn(values)) = op;
            if values.is_empty() || values.len() > MAX_CONSTRAINTS {
                return Err(format!("label selector {key}: {} values", values.len()));
            }
            for v in values {
                check_value(v)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(key, op)| match op {
                LabelOp::In(v) if v.len() == 1 => format!("{key}={}", v[0]),
                LabelOp::NotIn(v) if v.len() == 1 => format!("{key}!={}", v[0]),
                LabelOp::In(v) => format!("{key} in ({})", v.join(",")),
                LabelOp::NotIn(v) => format!("{key} not in ({})", v.join(",")),
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// Checks a node's labels (its own configuration, or a registration from another node).
pub fn check_node_labels(labels: &NodeLabels) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "{} node labels, more than {MAX_LABELS}",
            labels.len()
        ));
    }
    for (k, v) in labels {
        check_key(k)?;
        check_value(v).map_err(|e| format!("node label {k}: {e}"))?;
    }
    Ok(())
}

/// Parses `k=v,k2=v2` (as `raya start --labels` takes them).
pub fn parse_node_labels(text: &str) -> Result<NodeLabels, String> {
    let mut labels = NodeLabels::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("bad label {pair:?}: expected key=value"));
        };
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    check_node_labels(&labels)?;
    Ok(labels)
}

/// A label key, as Kubernetes (and Ray) spell them: an optional DNS-style prefix and `/`, then
/// a name of 1 to 63 letters, digits, `-`, `_` and `.` that starts and ends with a letter or
/// digit.
fn check_key(key: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "bad label key {key:?}: [prefix/]name, the name 1 to 63 letters, digits, '-', '_' or \
             '.' starting and ending with a letter or digit, the prefix a DNS name"
        ))
    };
    if key.len() > MAX_KEY_LEN {
        return bad();
    }
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if !is_name(name) {
        return bad();
    }
    if let Some(p) = prefix {
        let dns = !p.is_empty()
            && p.len() <= MAX_KEY_LEN
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !dns {
            return bad();
        }
    }
    Ok(())
}

/// A label value: 1 to 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter
/// or digit.
fn check_value(value: &str) -> Result<(), String> {
    if is_name(value) {
        Ok(())
    } else {
        Err(format!(
            "bad label value {value:?}: 1 to {MAX_VALUE_LEN} letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ))
    }
}

/// 1 to 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
fn is_name(s: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !s.is_empty()
        && s.len() <= MAX_VALUE_LEN
        && edge(s.chars().next())
        && edge(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(pairs: &[(&str, &str)]) -> NodeLabels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_as_rays_do_and_bad_ones_are_refused() {
        let west = node(&[("region", "us-west"), ("disk", "ssd")]);
        let bare = node(&[]);
        let sel = |k: &str, e: &str| {
            let mut s = LabelSelector::default();
            s.require(k, e).unwrap();
            s
        };
        assert!(sel("region", "us-west").matches(&west));
        assert!(!sel("region", "us-west").matches(&bare));
        assert!(!sel("region", "!us-west").matches(&west));
        assert!(
            sel("region", "!us-west").matches(&bare),
            "absent is not equal"
        );
        assert!(sel("region", "in(us-east, us-west)").matches(&west));
        assert!(!sel("region", "!in(us-east,us-west)").matches(&west));
        assert!(sel("region", "!in(us-east)").matches(&west));
        let mut both = sel("region", "us-west");
        both.require("disk", "hdd").unwrap();
        assert!(!both.matches(&west), "every constraint must hold");
        assert_eq!(both.to_string(), "region=us-west, disk=hdd");
        assert!(
            LabelSelector::default()
                .require("topology.example.com/zone", "z-1")
                .is_ok()
        );
        for (k, e) in [
            ("", "x"),
            ("region", ""),
            ("region", "in()"),
            ("region", "a b"),
            ("re gion", "x"),
            ("-region", "x"),
            ("region", "x-"),
            ("/region", "x"),
            ("bad_prefix/region", "x"),
        ] {
            assert!(
                LabelSelector::default().require(k, e).is_err(),
                "{k:?}={e:?} taken"
            );
        }
        assert!(both.check().is_ok());
        let forged = LabelSelector(vec![("region".into(), LabelOp::In(vec![]))]);
        assert!(forged.check().is_err());
    }

    #[test]
    fn node_labels_parse_from_the_command_line_and_are_bounded() {
        assert_eq!(
            parse_node_labels("region=us-west, disk=ssd").unwrap(),
            node(&[("region", "us-west"), ("disk", "ssd")])
        );
        assert!(parse_node_labels("region").is_err());
        assert!(parse_node_labels("region=us west").is_err());
        let many: Vec<String> = (0..=MAX_LABELS).map(|i| format!("k{i}=v")).collect();
        assert!(parse_node_labels(&many.join(",")).is_err());
    }
}
