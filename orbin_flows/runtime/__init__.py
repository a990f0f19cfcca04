"""The runtime that only workers run: worker, engine, compiler, fast path, schedule keeper."""
