//! The policy file: TOML, unknown keys rejected, every error located by line and column.

use super::{FailOn, Policy, Requirements, Waiver};
use crate::findings::Severity;
use crate::model::DiskType;
use crate::rules::catalogue::catalogue;
use serde::{Deserialize, Deserializer, de};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// A policy file that cannot be used, with the place of the fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based; 0 when the parser gave no place.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}, column {}: ", self.line, self.column)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

impl PolicyError {
    fn at(text: &str, span: Option<Range<usize>>, message: &str) -> PolicyError {
        let (line, column) = span.map_or((0, 0), |s| line_column(text, s.start));
        PolicyError {
            line,
            column,
            // The CLI reports on one line.
            message: message.trim().replace('\n', " "),
        }
    }
}

/// 1-based line and column (in characters) of byte `pos`.
fn line_column(text: &str, pos: usize) -> (usize, usize) {
    let before = text.get(..pos.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    fail_on: Option<FailOn>,
    #[serde(default)]
    severity: BTreeMap<Spanned<String>, Severity>,
    #[serde(default, rename = "waiver")]
    waivers: Vec<RawWaiver>,
    #[serde(default)]
    require: RawRequirements,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    rule: Spanned<String>,
    reason: Spanned<String>,
    structure: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRequirements {
    #[serde(default, deserialize_with = "disk_types")]
    disk_types: Option<Vec<DiskType>>,
    max_virtual_size: Option<Size>,
    block_sizes: Option<Vec<Size>>,
    logical_sector_sizes: Option<Vec<u32>>,
    allow_parent: Option<bool>,
    allow_pending_log: Option<bool>,
    allow_unknown_regions: Option<bool>,
    allow_unknown_metadata_items: Option<bool>,
}

/// A byte count: an integer, or a string such as "64 GiB" (binary units).
struct Size(u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Bytes(n)) => Ok(Size(n)),
            Ok(Raw::Text(s)) => parse_size(&s).map(Size).ok_or_else(|| {
                de::Error::custom(format!(
                    "invalid size {s:?}: expected a byte count or a number with B, KiB, MiB, GiB or TiB"
                ))
            }),
            Err(_) => Err(de::Error::custom(
                "invalid size: expected a byte count or a string such as \"64 GiB\"",
            )),
        }
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

fn disk_types<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<DiskType>>, D::Error> {
    const NAMES: &[&str] = &["fixed", "dynamic", "differencing"];
    let names = Vec::<String>::deserialize(d)?;
    names
        .iter()
        .map(|n| {
            (DiskType::ALL.into_iter())
                .find(|t| t.name() == n)
                .ok_or_else(|| de::Error::unknown_variant(n, NAMES))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A rule id the catalogue knows, or an error at its place.
fn known_rule(text: &str, id: &Spanned<String>) -> Result<&'static str, PolicyError> {
    catalogue().get(id.get_ref()).map(|r| r.id).ok_or_else(|| {
        PolicyError::at(
            text,
            Some(id.span()),
            &format!(
                "unknown rule id {:?} (see `vhdx-check rules`)",
                id.get_ref()
            ),
        )
    })
}

impl Policy {
    /// Parses a policy file's text.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let raw: RawPolicy =
            toml::from_str(text).map_err(|e| PolicyError::at(text, e.span(), e.message()))?;
        let mut severity = BTreeMap::new();
        for (id, sev) in &raw.severity {
            severity.insert(known_rule(text, id)?, *sev);
        }
        let mut waivers = Vec::new();
        for w in &raw.waivers {
            let rule = known_rule(text, &w.rule)?;
            if w.reason.get_ref().trim().is_empty() {
                return Err(PolicyError::at(
                    text,
                    Some(w.reason.span()),
                    &format!("the waiver of {rule} needs a reason (why is it acceptable?)"),
                ));
            }
            waivers.push(Waiver {
                rule,
                reason: w.reason.get_ref().trim().to_string(),
                structure: w.structure.clone(),
            });
        }
        let r = raw.require;
        Ok(Policy {
            fail_on: raw.fail_on,
            severity,
            waivers,
            require: Requirements {
                disk_types: r.disk_types,
                max_virtual_size: r.max_virtual_size.map(|s| s.0),
                block_sizes: r.block_sizes.map(|v| v.into_iter().map(|s| s.0).collect()),
                logical_sector_sizes: r.logical_sector_sizes,
                allow_parent: r.allow_parent.unwrap_or(true),
                allow_pending_log: r.allow_pending_log.unwrap_or(true),
                allow_unknown_regions: r.allow_unknown_regions.unwrap_or(true),
                allow_unknown_metadata_items: r.allow_unknown_metadata_items.unwrap_or(true),
            },
        })
    }

    /// Reads and parses a policy file; the error is one line naming the file.
    pub fn load(path: &std::path::Path) -> Result<Policy, String> {
        let text = read_policy(path)
            .map_err(|e| format!("cannot read policy file {}: {e}", path.display()))?;
        Policy::parse(&text).map_err(|e| format!("bad policy file {}: {e}", path.display()))
    }
}

/// Largest policy file read: a policy is a few KiB of TOML.
pub const MAX_POLICY_BYTES: u64 = 1 << 20;

/// The text of a policy file: a regular file (opened without blocking, so a FIFO cannot
/// hang us; a device is refused before it is read) of at most [`MAX_POLICY_BYTES`].
fn read_policy(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let file = crate::io::open_regular(path, "policy file")?;
    let meta = file.metadata()?;
    if meta.len() > MAX_POLICY_BYTES {
        return Err(bad(format!(
            "{} bytes, more than a policy file may have ({MAX_POLICY_BYTES})",
            meta.len()
        )));
    }
    // Bounded even if the file grows meanwhile.
    let mut text = String::new();
    file.take(MAX_POLICY_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_POLICY_BYTES {
        return Err(bad(format!(
            "more than a policy file may have ({MAX_POLICY_BYTES} bytes)"
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> PolicyError {
        Policy::parse(text).expect_err("policy should be rejected")
    }

    #[test]
    fn full_policy_parses() {
        let p = Policy::parse(
            r#"
fail_on = "warning"
[severity]
"RGN-020" = "info"
[[waiver]]
rule = "LAYOUT-003"
reason = "legacy images"
structure = "file"
[require]
disk_types = ["dynamic", "fixed"]
max_virtual_size = "2 TiB"
block_sizes = ["32 MiB", 1048576]
logical_sector_sizes = [512]
allow_parent = false
allow_pending_log = false
allow_unknown_regions = false
allow_unknown_metadata_items = false
"#,
        )
        .unwrap();
        assert_eq!(p.fail_on, Some(FailOn::Warning));
        assert_eq!(p.severity["RGN-020"], Severity::Info);
        assert_eq!(p.waivers[0].structure.as_deref(), Some("file"));
        let r = &p.require;
        assert_eq!(r.max_virtual_size, Some(2 << 40));
        assert_eq!(r.block_sizes, Some(vec![32 << 20, 1 << 20]));
        assert!(!r.allow_parent && !r.allow_pending_log);
        assert!(Policy::parse("").unwrap().require.allow_parent);
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = err("fail_on = \"error\"\n\n[require]\nmax_size = 1\n");
        assert_eq!((e.line, e.column), (4, 1), "{e}");
        assert!(e.message.contains("max_size"), "{e}");
        let e = err("[[waiver]]\nrule = \"HDR-002\"\n");
        assert!(e.line == 1 && e.message.contains("reason"), "{e}");
        let e = err("[[waiver]]\nrule = \"HDR-002\"\nreason = \"  \"\n");
        assert_eq!((e.line, e.column), (3, 10), "{e}");
        let e = err("[severity]\n\"HDR-999\" = \"info\"\n");
        assert_eq!(e.line, 2, "{e}");
        let e = err("[severity]\n\"HDR-002\" = \"fatal\"\n");
        assert_eq!(e.line, 2, "{e}");
        let e = err("[require]\ndisk_types = [\"sparse\"]\n");
        assert!(e.line == 2 && e.message.contains("sparse"), "{e}");
        let e = err("[require]\nmax_virtual_size = \"12 parsecs\"\n");
        assert!(e.line == 2 && e.message.contains("parsecs"), "{e}");
        let e = err("fail_on = \"sometimes\"");
        assert!(
            e.line == 1 && e.to_string().starts_with("line 1, column"),
            "{e}"
        );
        assert!(!err("= broken").to_string().contains('\n'));
    }

    #[test]
    fn only_the_empty_policy_is_empty() {
        assert!(Policy::default().is_empty());
        assert!(Policy::parse("").unwrap().is_empty());
        // fail_on decides the verdict, not the report: still empty.
        assert!(Policy::parse("fail_on = \"warning\"").unwrap().is_empty());
        for text in [
            "[severity]\n\"RGN-020\" = \"info\"",
            "[[waiver]]\nrule = \"LAYOUT-003\"\nreason = \"legacy\"",
            "[require]\ndisk_types = [\"fixed\"]",
            "[require]\nmax_virtual_size = \"2 TiB\"",
            "[require]\nblock_sizes = [1048576]",
            "[require]\nlogical_sector_sizes = [512]",
            "[require]\nallow_parent = false",
            "[require]\nallow_pending_log = false",
            "[require]\nallow_unknown_regions = false",
            "[require]\nallow_unknown_metadata_items = false",
        ] {
            assert!(!Policy::parse(text).unwrap().is_empty(), "{text}");
        }
        // Requirements set to their defaults ask for nothing.
        assert!(
            Policy::parse("[require]\nallow_parent = true")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64 GiB"), Some(64 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1t"), Some(1 << 40));
        assert_eq!(parse_size("99999999999 TiB"), None);
        assert_eq!(parse_size("GiB"), None);
        assert_eq!(parse_size("1.5 GiB"), None);
    }
}
