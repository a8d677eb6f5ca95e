//! Frame decode benchmark (placeholder until the criterion benchmark lands).
fn main() {}
