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
        // Short values would replace parts of unrelated words.
        if value.len() >= 4 && !self.known.iter().any(|(v, ..)| *v == value) {
            let re =
                Regex::new(&format!("(?i){}", regex::escape(&value))).expect("escaped literal");
            self.known.push((value, placeholder, re));
            self.known.sort_by(|a, b| b.0.len().cmp(&a.0.len()));
        }
        self
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (_, p, re) in &self.known {
            out = re.replace_all(&out, regex::NoExpand(p)).into_owned();
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
}
