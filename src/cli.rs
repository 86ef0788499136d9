//! Command line: clap derive, each subcommand maps flags to library options.

pub fn main() -> i32 {
    0
}
