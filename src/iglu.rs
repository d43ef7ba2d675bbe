//! Iglu schema keys (`iglu:vendor/name/format/M-R-A`) and criteria (`M-R-*`).
//!
//! Every config file and every command names its schema with a key; responders accept a family
//! of versions with a criterion. Sauna's rule (kept here): vendor, name, format and MODEL must be
//! equal; a criterion `1-0-*` fixes the REVISION too and accepts any ADDITION, so `1-0-3`
//! matches while `1-1-0` and `2-0-0` do not.

use std::fmt;
use std::str::FromStr;

/// A SchemaVer `MODEL-REVISION-ADDITION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaVer {
    pub model: u32,
    pub revision: u32,
    pub addition: u32,
}

impl fmt::Display for SchemaVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.model, self.revision, self.addition)
    }
}

/// Why a string is not an Iglu key or criterion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an Iglu URI iglu:vendor/name/format/MODEL-REVISION-ADDITION, found {found:?}: {why}")]
pub struct IgluParseError {
    pub found: String,
    pub why: &'static str,
}

/// The full address of one schema, e.g.
/// `iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaKey {
    pub vendor: String,
    pub name: String,
    pub format: String,
    pub version: SchemaVer,
}

impl SchemaKey {
    /// `vendor/name/format/M-R-A`, the path of this schema in a static Iglu repository.
    pub fn repository_path(&self) -> String {
        format!("{}/{}/{}/{}", self.vendor, self.name, self.format, self.version)
    }
}

impl fmt::Display for SchemaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "iglu:{}/{}/{}/{}", self.vendor, self.name, self.format, self.version)
    }
}

impl FromStr for SchemaKey {
    type Err = IgluParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (vendor, name, format, version) = split_uri(s)?;
        let parts: Vec<&str> = version.split('-').collect();
        let err = |why| IgluParseError { found: s.to_owned(), why };
        if parts.len() != 3 {
            return Err(err("the version must be MODEL-REVISION-ADDITION"));
        }
        let num = |p: &str| p.parse::<u32>().map_err(|_| err("version parts must be numbers"));
        Ok(SchemaKey {
            vendor: vendor.to_owned(),
            name: name.to_owned(),
            format: format.to_owned(),
            version: SchemaVer { model: num(parts[0])?, revision: num(parts[1])?, addition: num(parts[2])? },
        })
    }
}

/// A family of schema versions a responder accepts, e.g. `…/send_message/jsonschema/1-0-*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaCriterion {
    pub vendor: String,
    pub name: String,
    pub format: String,
    pub model: u32,
    /// `None` is `*`.
    pub revision: Option<u32>,
    /// `None` is `*`.
    pub addition: Option<u32>,
}

impl SchemaCriterion {
    /// True when `key` is one of the versions this criterion names.
    pub fn matches(&self, key: &SchemaKey) -> bool {
        self.vendor == key.vendor
            && self.name == key.name
            && self.format == key.format
            && self.model == key.version.model
            && self.revision.is_none_or(|r| r == key.version.revision)
            && self.addition.is_none_or(|a| a == key.version.addition)
    }
}

impl fmt::Display for SchemaCriterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let star = |v: Option<u32>| v.map_or_else(|| "*".to_owned(), |n| n.to_string());
        write!(
            f,
            "iglu:{}/{}/{}/{}-{}-{}",
            self.vendor,
            self.name,
            self.format,
            self.model,
            star(self.revision),
            star(self.addition)
        )
    }
}

impl FromStr for SchemaCriterion {
    type Err = IgluParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (vendor, name, format, version) = split_uri(s)?;
        let err = |why| IgluParseError { found: s.to_owned(), why };
        let parts: Vec<&str> = version.split('-').collect();
        if parts.len() != 3 {
            return Err(err("the version must be MODEL-REVISION-ADDITION"));
        }
        let model = parts[0].parse::<u32>().map_err(|_| err("the MODEL of a criterion must be a number"))?;
        let part = |p: &str| -> Result<Option<u32>, IgluParseError> {
            if p == "*" {
                Ok(None)
            } else {
                p.parse::<u32>().map(Some).map_err(|_| err("REVISION and ADDITION must be numbers or *"))
            }
        };
        let revision = part(parts[1])?;
        let addition = part(parts[2])?;
        if revision.is_none() && addition.is_some() {
            return Err(err("a fixed ADDITION needs a fixed REVISION"));
        }
        Ok(SchemaCriterion {
            vendor: vendor.to_owned(),
            name: name.to_owned(),
            format: format.to_owned(),
            model,
            revision,
            addition,
        })
    }
}

/// Whether `s` is what Iglu Central's `instance-iglu-only` schema allows, its pattern
/// `^iglu:[a-zA-Z0-9-_.]+/[a-zA-Z0-9-_]+/[a-zA-Z0-9-_]+/[0-9]+-[0-9]+-[0-9]+$`, without running
/// it. One pass over the bytes with a table of what each part allows: the validator asks this
/// twice per command, and splitting the URI into its parts first cost three times as much.
pub fn is_iglu_uri(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("iglu:") else { return false };
    let bytes = rest.as_bytes();
    let mut at = 0;
    // Runs of `class` from `at`, at least one byte long; `at` ends on the first byte past them.
    let run = |at: &mut usize, class: u8| {
        let start = *at;
        while bytes.get(*at).is_some_and(|&b| URI_BYTES[usize::from(b)] & class != 0) {
            *at += 1;
        }
        *at > start
    };
    let then = |at: &mut usize, byte: u8| {
        let found = bytes.get(*at) == Some(&byte);
        *at += usize::from(found);
        found
    };
    run(&mut at, VENDOR)
        && then(&mut at, b'/')
        && run(&mut at, WORD)
        && then(&mut at, b'/')
        && run(&mut at, WORD)
        && then(&mut at, b'/')
        && run(&mut at, DIGIT)
        && then(&mut at, b'-')
        && run(&mut at, DIGIT)
        && then(&mut at, b'-')
        && run(&mut at, DIGIT)
        && at == bytes.len()
}

/// [`URI_BYTES`] classes: what a vendor, a name or format, and a version number may hold.
const VENDOR: u8 = 1;
const WORD: u8 = 2;
const DIGIT: u8 = 4;
/// For each byte, the classes of Iglu URI parts that may hold it.
const URI_BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let word = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        table[i] = if word || b == b'.' { VENDOR } else { 0 }
            | if word { WORD } else { 0 }
            | if b.is_ascii_digit() { DIGIT } else { 0 };
        i += 1;
    }
    table
};

/// Splits `iglu:vendor/name/format/version`, checking the characters Iglu allows.
fn split_uri(s: &str) -> Result<(&str, &str, &str, &str), IgluParseError> {
    let err = |why| IgluParseError { found: s.to_owned(), why };
    let rest = s.strip_prefix("iglu:").ok_or_else(|| err("it must start with \"iglu:\""))?;
    let mut parts = rest.split('/');
    let (Some(vendor), Some(name), Some(format), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(err("it must have four parts separated by '/'"));
    };
    // Byte by byte: every character allowed is ASCII, and no byte of a multi-byte one is.
    let ok = |p: &str, class: u8| !p.is_empty() && p.bytes().all(|b| URI_BYTES[usize::from(b)] & class != 0);
    if !ok(vendor, VENDOR) {
        return Err(err("the vendor may hold only letters, digits, '-', '_' and '.'"));
    }
    if !ok(name, WORD) || !ok(format, WORD) {
        return Err(err("name and format may hold only letters, digits, '-' and '_'"));
    }
    Ok((vendor, name, format, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_iglu_uri` accepts what Iglu Central's pattern accepts, and nothing else.
    #[test]
    fn iglu_uris_as_the_pattern_has_them() {
        for ok in [
            "iglu:com.acme/thing/jsonschema/1-0-0",
            "iglu:com.snowplowanalytics.sauna.commands/send_message/jsonschema/10-22-333",
            "iglu:a_b-c.d/x-y_z/json-schema_2/0-0-0",
            "iglu:A9/B/C/1-2-3",
        ] {
            assert!(is_iglu_uri(ok), "{ok}");
        }
        for bad in [
            "",
            "iglu:",
            "com.acme/thing/jsonschema/1-0-0",
            "Iglu:com.acme/thing/jsonschema/1-0-0",
            "iglu:com.acme/thing/jsonschema/1-0",
            "iglu:com.acme/thing/jsonschema/1-0-0-0",
            "iglu:com.acme/thing/jsonschema/1-0-x",
            "iglu:com.acme/thing/jsonschema/1--0",
            "iglu:com.acme/thing/jsonschema/1-0-0/",
            "iglu:com.acme/thing/jsonschema/1-0-0\n",
            "iglu:com.acme/th.ing/jsonschema/1-0-0",
            "iglu:com.acme/thing/json.schema/1-0-0",
            "iglu:/thing/jsonschema/1-0-0",
            "iglu:com.acme//jsonschema/1-0-0",
            "iglu:com acme/thing/jsonschema/1-0-0",
            "iglu:com.acmé/thing/jsonschema/1-0-0",
            "iglu:com.acme/thing/jsonschema/1-0-٣",
            "iglu:com.acme/thing/jsonschema",
        ] {
            assert!(!is_iglu_uri(bad), "{bad:?}");
        }
    }

    /// A part of an Iglu URI: mostly what `good` allows, now and then anything of `any`.
    fn part(good: &'static str, any: &'static str) -> impl proptest::strategy::Strategy<Value = String> {
        proptest::prop_oneof![6 => good, 1 => any]
    }

    /// Iglu URIs, most of them valid and the others a byte or a part off.
    fn near_iglu_uris() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy as _;
        (
            part("iglu:", "(Iglu:|iglu|)"),
            part("[a-z0-9._-]{1,4}", "[a-z0-9._é /-]{0,4}"),
            part("[a-zA-Z0-9_-]{1,4}", "[a-z0-9._é /-]{0,4}"),
            part("[a-zA-Z0-9_-]{1,4}", "[a-z0-9._é /-]{0,4}"),
            part("[0-9]{1,2}-[0-9]{1,2}-[0-9]{1,2}", "[0-9x/-]{0,7}"),
            part("", "[\n/x-]"),
        )
            .prop_map(|(prefix, vendor, name, format, version, end)| {
                format!("{prefix}{vendor}/{name}/{format}/{version}{end}")
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// `is_iglu_uri` answers as the pattern does, on near misses of every kind, and on
        /// strings of the same bytes in any order.
        #[test]
        fn is_iglu_uri_answers_as_the_pattern(s in proptest::prop_oneof![near_iglu_uris(), "[iglu:a0._é /-]{0,24}"]) {
            static PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
                regex::Regex::new(r"^iglu:[a-zA-Z0-9\-_.]+/[a-zA-Z0-9\-_]+/[a-zA-Z0-9\-_]+/[0-9]+-[0-9]+-[0-9]+$")
                    .expect("the pattern compiles")
            });
            proptest::prop_assert_eq!(is_iglu_uri(&s), PATTERN.is_match(&s), "{:?}", s);
        }
    }

    fn key(s: &str) -> SchemaKey {
        s.parse().expect("valid key")
    }

    #[test]
    fn parses_and_prints_keys() {
        let k = key("iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0");
        assert_eq!(k.vendor, "com.slack.sauna.commands");
        assert_eq!(k.name, "send_message");
        assert_eq!(k.to_string(), "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0");
    }

    #[test]
    fn rejects_bad_keys() {
        for bad in [
            "",
            "com.acme/x/jsonschema/1-0-0",
            "iglu:com.acme/x/jsonschema",
            "iglu:com.acme/x/jsonschema/1-0",
            "iglu:com.acme/x/jsonschema/1-0-a",
            "iglu:com acme/x/jsonschema/1-0-0",
            "iglu:com.acme/x.y/jsonschema/1-0-0",
            "iglu:com.acme/x/jsonschema/1-0-*",
        ] {
            assert!(bad.parse::<SchemaKey>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn criterion_matches_any_addition_of_its_revision() {
        let c: SchemaCriterion =
            "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*".parse().expect("valid criterion");
        let base = "iglu:com.slack.sauna.commands/send_message/jsonschema/";
        assert!(c.matches(&key(&format!("{base}1-0-0"))));
        assert!(c.matches(&key(&format!("{base}1-0-3"))));
        assert!(!c.matches(&key(&format!("{base}1-1-0"))));
        assert!(!c.matches(&key(&format!("{base}2-0-0"))));
        assert!(!c.matches(&key("iglu:com.slack.sauna.commands/other/jsonschema/1-0-0")));
        assert!(!c.matches(&key("iglu:com.acme/send_message/jsonschema/1-0-0")));
        assert_eq!(c.to_string(), format!("{base}1-0-*"));
    }

    #[test]
    fn criterion_with_star_revision() {
        let c: SchemaCriterion = "iglu:a/b/jsonschema/1-*-*".parse().expect("valid");
        assert!(c.matches(&key("iglu:a/b/jsonschema/1-7-2")));
        assert!(!c.matches(&key("iglu:a/b/jsonschema/2-0-0")));
        assert!("iglu:a/b/jsonschema/1-*-2".parse::<SchemaCriterion>().is_err());
    }
}
