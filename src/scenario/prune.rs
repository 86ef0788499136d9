//! Error recovery for `validate`: serde stops at the first problem, so the
//! node it refused is cut out of the document and the rest is read again,
//! until it deserialises. Every problem is then reported in one pass, as a
//! linter would, at its place in the file the user wrote.
//!
//! Paths are serde's (`machines[0].nics[1].model`). Cutting a sequence item
//! shifts the items after it; `Pruned` maps the paths of the cut document
//! back to the user's indices.

use serde_norway::Value;

/// One cut segment of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key.to_string()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            out.push(Segment::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

fn render(segments: &[Segment]) -> String {
    let mut s = String::new();
    for seg in segments {
        match seg {
            Segment::Key(k) if s.is_empty() => s.push_str(k),
            Segment::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Segment::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// What has been cut so far, in the user's indices.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Cut sequence items: (path of the sequence, original index).
    items: Vec<(String, usize)>,
    /// Every cut path, in the user's indices.
    paths: Vec<String>,
    /// A whole machine group was cut: checks that look machines up by name
    /// would report names that are only missing because of the cut.
    pub machine_group_cut: bool,
}

impl Pruned {
    /// A path of the current (cut) document in the user's indices.
    pub fn original(&self, path: &str) -> String {
        let Some(segments) = parse_path(path) else {
            return path.to_string();
        };
        let mut out: Vec<Segment> = Vec::new();
        for seg in segments {
            match seg {
                Segment::Index(i) => {
                    let seq = render(&out);
                    let mut cut: Vec<usize> = self
                        .items
                        .iter()
                        .filter(|(p, _)| *p == seq)
                        .map(|(_, i)| *i)
                        .collect();
                    cut.sort_unstable();
                    // The i-th item still there is the (i + items cut before it)-th.
                    let mut original = i;
                    for c in cut {
                        if c <= original {
                            original += 1;
                        }
                    }
                    out.push(Segment::Index(original));
                }
                key => out.push(key),
            }
        }
        render(&out)
    }

    /// Whether a problem at `path` (user's indices) only follows from a cut:
    /// the path is a cut one or holds one.
    pub fn follows_from_cut(&self, path: &str) -> bool {
        self.paths.iter().any(|cut| {
            cut == path
                || path.is_empty()
                || cut
                    .strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    }

    /// Cut the node at `path` (current indices) out of `doc`; for an unknown
    /// field, the field itself. Returns false when nothing can be cut (the
    /// document root): recovery stops there.
    pub fn cut(&mut self, doc: &mut Value, path: &str, unknown_field: Option<&str>) -> bool {
        let Some(mut segments) = parse_path(path) else {
            return false;
        };
        if let Some(field) = unknown_field {
            segments.push(Segment::Key(field.to_string()));
        }
        let Some((last, parent)) = segments.split_last() else {
            return false;
        };
        let user_path = self.original(&render(&segments));
        let user_parent = self.original(&render(parent));
        let mut node = &mut *doc;
        for seg in parent {
            let next = match (seg, node) {
                (Segment::Key(k), Value::Mapping(m)) => m.get_mut(k.as_str()),
                (Segment::Index(i), Value::Sequence(s)) => s.get_mut(*i),
                _ => None,
            };
            match next {
                Some(v) => node = v,
                None => return false,
            }
        }
        let removed = match (last, node) {
            (Segment::Key(k), Value::Mapping(m)) => m.remove(k.as_str()).is_some(),
            (Segment::Index(i), Value::Sequence(s)) if *i < s.len() => {
                s.remove(*i);
                if let Some(Segment::Index(original)) =
                    parse_path(&user_path).and_then(|s| s.last().cloned())
                {
                    self.items.push((user_parent.clone(), original));
                }
                if user_parent == "machines" {
                    self.machine_group_cut = true;
                }
                true
            }
            _ => false,
        };
        // Cutting an unknown field cannot make its parent invalid, so later
        // problems of the parent are its own and still reported.
        if removed && unknown_field.is_none() {
            self.paths.push(user_path);
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Value {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn cutting_sequence_items_keeps_the_users_indices() {
        let mut d = doc("steps: [a, b, c, d]");
        let mut p = Pruned::default();
        assert!(p.cut(&mut d, "steps[1]", None));
        // What is now steps[1] was the user's steps[2].
        assert_eq!(p.original("steps[1]"), "steps[2]");
        assert!(p.cut(&mut d, "steps[1]", None));
        assert_eq!(p.original("steps[1]"), "steps[3]");
        assert_eq!(p.original("steps[0]"), "steps[0]");
        assert_eq!(d, doc("steps: [a, d]"));
    }

    #[test]
    fn an_unknown_field_is_cut_alone() {
        let mut d = doc("machines: [{name: a, colour: red}]");
        let mut p = Pruned::default();
        assert!(p.cut(&mut d, "machines[0]", Some("colour")));
        assert_eq!(d, doc("machines: [{name: a}]"));
        assert!(!p.machine_group_cut);
        assert!(!p.follows_from_cut("machines[0]"));
    }

    #[test]
    fn a_cut_value_explains_its_parents_problem() {
        let mut d = doc("steps: [{wait_status: soon}, {sleep: 1s}]");
        let mut p = Pruned::default();
        assert!(p.cut(&mut d, "steps[0].wait_status", None));
        assert!(p.follows_from_cut("steps[0]"));
        assert!(!p.follows_from_cut("steps[1]"));
    }

    #[test]
    fn the_root_cannot_be_cut() {
        let mut d = doc("machines: []");
        assert!(!Pruned::default().cut(&mut d, "", None));
    }
}
