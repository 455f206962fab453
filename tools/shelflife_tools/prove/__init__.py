"""Issue 9's proofs: campaigns that measure the system under faults and hostile input,
each runnable on its own and from ``make prove``; figures go to docs/RELIABILITY.md."""
