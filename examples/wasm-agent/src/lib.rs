//! The `fixed-cores` example agent as a WASM component: the factory its native crate
//! registers, exported through the guest SDK. Build it with
//! `cargo build --release --target wasm32-wasip2 -p gamesa-example-wasm-agent`
//! (or `scripts/build-wasm-agents.sh`) and load it with `[[agents]] kind = "wasm"`
//! (examples/README.md).

gamesa_wasm_guest::export_agent!(gamesa_example_fixed_cores::build);
