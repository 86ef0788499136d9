//! Where each value of a YAML document sits, by field path.
//!
//! serde reports type errors with a location, but checks that need the whole
//! scenario (duplicate names, a step naming an unknown machine) run after
//! deserialising. This index maps the same paths serde prints
//! (`machines[1].name`) to `line:col`, so those errors point at the source too.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// 1-based line and column of a value in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Default)]
pub struct SpanIndex {
    positions: HashMap<String, Pos>,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

impl SpanIndex {
    /// Index a document; a document that does not parse gives an empty index
    /// (serde reports the parse error with its own location).
    pub fn build(source: &str) -> SpanIndex {
        let mut index = SpanIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(source) {
            let Ok((event, span)) = item else { break };
            let pos = Pos {
                line: span.start.line(),
                col: span.start.col() + 1,
            };
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Map {
                        key: key @ None, ..
                    }) = stack.last_mut()
                    {
                        *key = Some(value.into_owned());
                        continue;
                    }
                    let path = value_path(&mut stack);
                    index.positions.entry(path).or_insert(pos);
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let path = value_path(&mut stack);
                    index.positions.entry(path.clone()).or_insert(pos);
                    stack.push(match event {
                        Event::MappingStart(..) => Frame::Map { path, key: None },
                        _ => Frame::Seq { path, index: 0 },
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        index
    }

    /// The position of `path`, or of its nearest indexed parent.
    pub fn find(&self, path: &str) -> Option<Pos> {
        let mut p = path.to_string();
        loop {
            if let Some(pos) = self.positions.get(&p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
            if p.is_empty() {
                return self.positions.get("").copied();
            }
        }
    }
}

/// The path of the value that starts now, advancing the parent frame.
fn value_path(stack: &mut [Frame]) -> String {
    match stack.last_mut() {
        None => String::new(),
        Some(Frame::Map { path, key }) => {
            let k = key.take().unwrap_or_default();
            if path.is_empty() {
                k
            } else {
                format!("{path}.{k}")
            }
        }
        Some(Frame::Seq { path, index }) => {
            let p = format!("{path}[{index}]");
            *index += 1;
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_serde_style() {
        let src =
            "name: x\nmachines:\n  - name: a\n    nics:\n      - model: virtio\n  - name: b\n";
        let idx = SpanIndex::build(src);
        assert_eq!(idx.find("name"), Some(Pos { line: 1, col: 7 }));
        assert_eq!(idx.find("machines[1].name"), Some(Pos { line: 6, col: 11 }));
        assert_eq!(
            idx.find("machines[0].nics[0].model"),
            Some(Pos { line: 5, col: 16 })
        );
        // Unknown leaf falls back to the parent.
        assert_eq!(idx.find("machines[1].bogus"), Some(Pos { line: 6, col: 5 }));
    }
}
