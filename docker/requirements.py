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
    lines = list(project.get("dependencies", []))
    for item in expand(project["name"], optional, extras):
        if item not in lines:
            lines.append(item)
    return lines


def expand(name: str, optional: dict[str, list[str]], extras: list[str]) -> list[str]:
    """The requirements of ``extras``, with the project's own extras (``name[api]``) inlined."""
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise SystemExit(f"unknown extras {unknown}; pyproject.toml has {sorted(optional)}")
    lines: list[str] = []
    for extra in extras:
        for item in optional[extra]:
            if item.startswith(f"{name}["):
                lines += expand(name, optional, item[len(name) + 1 : -1].split(","))
            else:
                lines.append(item)
    return lines


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], sys.argv[2:])))
