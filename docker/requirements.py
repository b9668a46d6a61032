"""Print the requirements of pyproject.toml's base dependencies plus the named extras.

The Dockerfile installs these before it copies any code, so a code edit rebuilds only the
last layer. Usage: python3 requirements.py PYPROJECT [EXTRA ...]
"""

import sys
import tomllib


def requirements(pyproject: str, extras: list[str]) -> list[str]:
    with open(pyproject, "rb") as file:
        project = tomllib.load(file)["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise SystemExit(f"unknown extras {unknown}; pyproject.toml has {sorted(optional)}")
    lines = list(project.get("dependencies", []))
    for extra in extras:
        lines += [item for item in optional[extra] if item not in lines]
    return lines


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], sys.argv[2:])))
