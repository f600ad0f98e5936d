//! Rebuild the shim when its linker script changes (keep-vmm's build passes it).
fn main() {
    println!("cargo:rerun-if-changed=shim.ld");
}
