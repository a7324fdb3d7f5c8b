"""Install the LiteLLM proxy into bench/.venv-litellm: `litellm` itself, then its `proxy`
extra's requirements as its metadata lists them (the extra as a whole does not resolve on this
package index, so each requirement that cannot be installed is reported and skipped).
Run with the virtual environment's own python, after `pip install litellm==VERSION`."""
import subprocess
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement

wanted = []
for line in requires("litellm") or []:
    requirement = Requirement(line)
    if requirement.marker and requirement.marker.evaluate({"extra": "proxy"}):
        requirement.marker = None
        wanted.append(str(requirement))

pip = [sys.executable, "-m", "pip", "install", "-q"]
if subprocess.run([*pip, *wanted]).returncode != 0:
    for requirement in wanted:
        if subprocess.run([*pip, requirement]).returncode != 0:
            print(f"skipped (does not install here): {requirement}", file=sys.stderr)
