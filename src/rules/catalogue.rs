//! The rule catalogue as data: rules/*.toml, turned into a static table by build.rs (the
//! files stay the single source of truth; the list of family files is in build.rs).
//! Looking a rule up costs a binary search, and nothing is parsed at start-up.

use super::finding::Severity;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub id: &'static str,
    pub applies_to: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub spec: &'static str,
    pub rationale: &'static str,
    /// Set while a rule has no check yet: why it waits (e.g. it needs the log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred: Option<&'static str>,
}

// `RULES` (sorted by id) and `FILES`, generated from rules/*.toml.
include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));

pub struct Catalogue {
    /// Sorted by id, ids unique (build.rs refuses duplicates).
    rules: &'static [RuleInfo],
}

impl Catalogue {
    pub fn get(&self, id: &str) -> Option<&'static RuleInfo> {
        let rules = self.rules;
        rules
            .binary_search_by(|r| r.id.cmp(id))
            .ok()
            .map(|i| &rules[i])
    }

    /// Every rule, in id order.
    pub fn rules(&self) -> std::slice::Iter<'static, RuleInfo> {
        self.rules.iter()
    }
}

/// The catalogue.
pub fn catalogue() -> &'static Catalogue {
    static CAT: Catalogue = Catalogue { rules: RULES };
    &CAT
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    /// A rule as written in rules/*.toml, read here at run time with `toml`.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Parsed {
        id: String,
        applies_to: String,
        title: String,
        severity: Severity,
        spec: String,
        rationale: String,
        #[serde(default)]
        deferred: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Family {
        rule: Vec<Parsed>,
    }

    #[test]
    fn generated_table_matches_the_rule_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut parsed = BTreeMap::new();
        for name in FILES {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let fam: Family = toml::from_str(&text).unwrap();
            for r in fam.rule {
                assert!(parsed.insert(r.id.clone(), r).is_none(), "duplicate id");
            }
        }
        let table: Vec<Parsed> = catalogue()
            .rules()
            .map(|r| Parsed {
                id: r.id.into(),
                applies_to: r.applies_to.into(),
                title: r.title.into(),
                severity: r.severity,
                spec: r.spec.into(),
                rationale: r.rationale.into(),
                deferred: r.deferred.map(String::from),
            })
            .collect();
        assert_eq!(table, parsed.into_values().collect::<Vec<_>>());
    }

    #[test]
    fn lookup_by_id() {
        assert!(
            RULES.windows(2).all(|w| w[0].id < w[1].id),
            "sorted, unique"
        );
        for r in RULES {
            assert!(std::ptr::eq(catalogue().get(r.id).unwrap(), r));
        }
        assert!(catalogue().get("BAT-000").is_none());
        assert!(catalogue().get("").is_none());
        assert_eq!(catalogue().get("HDR-002").unwrap().id, "HDR-002");
    }
}
