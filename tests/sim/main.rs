//! The deterministic fault simulator: seeded runs of the real driver over a
//! scripted server and a fault-injecting store, with crashes, pauses,
//! network loss, URL changes, a server whose file changes, and store faults
//! at any step, and the guarantees checked after every step (`world.rs`).
//!
//! `SIM_SEEDS=N` runs seeds 0..N (default 10,000), `SIM_SEED=S` replays
//! one, `SIM_FROM=F` starts elsewhere. It ends with `N seeds, V violations`;
//! a violation prints its seed and the scenario shrunk to the events and
//! faults it needs. `make sim` and `make soak` run it.

#[cfg(not(target_arch = "wasm32"))]
mod scenario;
#[cfg(not(target_arch = "wasm32"))]
#[path = "../scripted/mod.rs"]
#[allow(dead_code)]
mod scripted;
#[cfg(not(target_arch = "wasm32"))]
mod store;
#[cfg(not(target_arch = "wasm32"))]
mod world;

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use scenario::Scenario;
    use std::time::Instant;

    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let (from, count) = match number("SIM_SEED") {
        Some(seed) => (seed, 1),
        None => (
            number("SIM_FROM").unwrap_or(0),
            number("SIM_SEEDS").unwrap_or(10_000),
        ),
    };
    // A panic is a violation like any other: report it, not its backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let mut violations = 0u64;
    for seed in from..from.saturating_add(count) {
        let scenario = Scenario::generate(seed);
        if std::env::var_os("SIM_TRACE").is_some() {
            println!("{scenario:#?}");
        }
        let Err(violation) = check(&scenario) else {
            continue;
        };
        violations += 1;
        let shrunk = shrink(scenario);
        let again = check(&shrunk).err().unwrap_or(violation);
        println!("seed {seed}: {again}");
        println!("  shrunk to: {shrunk:#?}");
        println!("  replay: make sim SEED={seed}");
    }
    println!(
        "the simulator ran seeds {from}..{} in {:.1} s",
        from.saturating_add(count),
        started.elapsed().as_secs_f64()
    );
    println!("{count} seeds, {violations} violations");
    if violations > 0 {
        std::process::exit(1);
    }
}

/// Runs a scenario; a panic anywhere in it is a violation too.
#[cfg(not(target_arch = "wasm32"))]
fn check(scenario: &scenario::Scenario) -> Result<(), world::Violation> {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    match catch_unwind(AssertUnwindSafe(|| world::run(scenario))) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {message}"))
        }
    }
}

/// The scenario with every event and fault that the violation does not
/// need taken out (one at a time, until none can go).
#[cfg(not(target_arch = "wasm32"))]
fn shrink(mut scenario: scenario::Scenario) -> scenario::Scenario {
    use scripted::Fault;
    for _ in 0..20 {
        let mut smaller = false;
        let mut i = 0;
        while i < scenario.events.len() {
            let mut candidate = scenario.clone();
            candidate.events.remove(i);
            if check(&candidate).is_err() {
                scenario = candidate;
                smaller = true;
            } else {
                i += 1;
            }
        }
        for i in 0..scenario.faults.len() {
            if scenario.faults[i] == Fault::Pass {
                continue;
            }
            let mut candidate = scenario.clone();
            candidate.faults[i] = Fault::Pass;
            if check(&candidate).is_err() {
                scenario = candidate;
                smaller = true;
            }
        }
        if !smaller {
            break;
        }
    }
    // What is left of the faults: up to the last that is not a pass.
    let last = scenario.faults.iter().rposition(|f| *f != Fault::Pass);
    scenario.faults.truncate(last.map_or(0, |i| i + 1));
    scenario
}
