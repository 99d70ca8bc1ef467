//! The `gamesa` command line: for now it only reports its version.

fn main() {
    println!("gamesa {}", env!("CARGO_PKG_VERSION"));
}
