//! `refinery::embed_migrations!` reads `migrations/` while compiling, but
//! Cargo does not know it does: without this, a new `V9__*.sql` would be left
//! out of the build until something else changed in the crate.

fn main() {
    // A directory: Cargo watches every file in it, added ones included.
    println!("cargo:rerun-if-changed=../../migrations");
}
