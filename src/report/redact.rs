//! Redaction: run-specific values (run ids, MACs, IPs, UUIDs, times) become
//! stable placeholders and secrets become `<secret>`, so the same scenario
//! gives the same snapshot run after run and no artifact leaks a password.

use std::sync::LazyLock;

use regex::Regex;

/// Known values first (longest first), then patterns.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// (value, placeholder, case-insensitive matcher)
    known: Vec<(String, String, Regex)>,
}

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    vec![
        (
            Regex::new(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
                .unwrap(),
            "<time>",
        ),
        (
            Regex::new(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
                .unwrap(),
            "<uuid>",
        ),
        (
            Regex::new(r"(?i)\b52:54:00(:[0-9a-f]{2}){3}\b").unwrap(),
            "<mac>",
        ),
        (
            Regex::new(r"\b10\.\d{1,3}\.\d{1,3}\.\d{1,3}\b").unwrap(),
            "<ip>",
        ),
        (
            Regex::new(r"(?i)(oauth_signature=)[^,&\s]+").unwrap(),
            "${1}<secret>",
        ),
    ]
});

impl Redactor {
    pub fn new() -> Self {
        Redactor::default()
    }

    /// A secret: replaced wherever it appears, whatever the context.
    pub fn secret(&mut self, value: impl Into<String>) -> &mut Self {
        self.add(value.into(), "<secret>".into())
    }

    /// A run value with a stable, meaningful placeholder (`<mac:node-1/0>`).
    pub fn value(&mut self, value: impl Into<String>, placeholder: impl Into<String>) -> &mut Self {
        self.add(value.into(), format!("<{}>", placeholder.into()))
    }

    fn add(&mut self, value: String, placeholder: String) -> &mut Self {
        if value.is_empty() || self.known.iter().any(|(v, ..)| *v == value) {
            return self;
        }
        let literal = regex::escape(&value);
        let pattern = if value.len() >= 4 {
            format!("(?i){literal}")
        } else if placeholder == "<secret>" {
            // A short secret still never shows, but only where it stands
            // alone: inside a longer word it would mangle unrelated text.
            format!("(^|[^[:alnum:]]){literal}([^[:alnum:]]|$)")
        } else {
            // Short run values would replace parts of unrelated words.
            return self;
        };
        let re = Regex::new(&pattern).expect("escaped literal");
        self.known.push((value, placeholder, re));
        self.known.sort_by_key(|k| std::cmp::Reverse(k.0.len()));
        self
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (v, p, re) in &self.known {
            out = if v.len() >= 4 {
                re.replace_all(&out, regex::NoExpand(p)).into_owned()
            } else {
                // Keep the boundary characters the short pattern matched; a
                // second pass finds occurrences whose boundary the first used.
                let mut text = out;
                for _ in 0..2 {
                    text = re
                        .replace_all(&text, |c: &regex::Captures| {
                            format!("{}{p}{}", &c[1], &c[2])
                        })
                        .into_owned();
                }
                text
            };
        }
        for (re, p) in PATTERNS.iter() {
            out = re.replace_all(&out, *p).into_owned();
        }
        out
    }

    /// Whether any known secret occurs in `text` (for artifact checks).
    pub fn leaks(&self, text: &str) -> Vec<String> {
        self.known
            .iter()
            .filter(|(_, p, re)| p == "<secret>" && re.is_match(text))
            .map(|(v, ..)| format!("a secret of {} characters", v.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_then_patterns() {
        let mut r = Redactor::new();
        r.secret("hunter22pass")
            .value("0badc0de", "run-id")
            .value("52:54:00:aa:bb:cc", "mac:node/0");
        let out = r.redact("run 0badc0de node 52:54:00:AA:BB:CC pw=hunter22pass at 2026-11-25T10:00:00Z ip 10.1.2.3 other 52:54:00:01:02:03");
        assert_eq!(
            out,
            "run <run-id> node <mac:node/0> pw=<secret> at <time> ip <ip> other <mac>"
        );
        assert_eq!(r.leaks("x hunter22pass y").len(), 1);
        assert!(r.leaks(&out).is_empty());
    }

    #[test]
    fn a_short_secret_is_redacted_where_it_stands_alone() {
        let mut r = Redactor::new();
        r.secret("pw1").value("ab", "too-short");
        let out = r.redact("-p pw1 -u maas; pw1 pw1\npw12 xpw1 ab");
        assert_eq!(out, "-p <secret> -u maas; <secret> <secret>\npw12 xpw1 ab");
        assert_eq!(r.leaks("password=pw1&x").len(), 1);
        assert!(r.leaks(&out).is_empty());
    }
}
