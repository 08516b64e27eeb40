"""Test oracles: the conformance checker that replays a store's journal against the rules."""
