//! Runs one fuzz target under AFL++: `phalanx-afl <target>`, the input on
//! stdin. A panic or an allocation beyond the target's limit is a crash.

#[global_allocator]
static GUARD: phalanx_fuzz::Guard = phalanx_fuzz::Guard;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = phalanx_fuzz::target(&name) else {
        let names: Vec<&str> = phalanx_fuzz::TARGETS.iter().map(|t| t.name).collect();
        panic!("unknown target {name:?}; the targets: {}", names.join(", "));
    };
    afl::fuzz!(|data: &[u8]| {
        if let Err(over) = phalanx_fuzz::check(target, data) {
            panic!("{over}");
        }
    });
}
