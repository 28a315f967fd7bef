# resumable-fetch: the README's commands. Each one sets up what is missing first.
SHELL := bash

.PHONY: setup test demo package bench sim soak clean

## Install the toolchain, browser and servers (idempotent: seconds when done).
setup:
	@scripts/setup.sh

## Every test suite: format and lint checks, native, Node and headless Chromium.
test: setup
	@scripts/test.sh

## The fault simulator: SEEDS=N seeds (default 10,000; make test runs them
## too), or SEED=S to replay one with its shrunk scenario.
sim: setup
	@scripts/sim.sh

## A million seeds of the simulator, optimized (not part of test).
soak: setup
	@SEEDS=$${SEEDS:-1000000} PROFILE=release scripts/sim.sh

## Build the package and serve the demo page with a local sample file.
demo: setup
	@scripts/demo.sh

## Build the npm package into pkg/.
package: setup
	@scripts/package.sh

## The benchmark: prints figures and writes docs/BENCHMARKS.md (not part of test).
bench: setup
	@scripts/bench.sh

clean:
	rm -rf target pkg
