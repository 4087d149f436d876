"""A zero-config app: no Dockerfile. `kiln plan .` shows the plan; `kiln build .` builds it."""
import humanize

print("greeter ready:", humanize.naturalsize(1_000_000))
