"""The engine behind ci/bin/helm: Helm's own template engine and dependency
manager (helm_python, the Helm v4 SDK as a library), with helm's argv.

Supported, offline:
  helm template [NAME] CHART [-n|--namespace NS] [-f|--values FILE]...
                [--set K=V]... [--set-string K=V]... [--kube-version V]
  helm dependency build CHART        (also `dep`, `dependencies`)
  helm dependency update CHART [--skip-refresh]
Anything else exits 64 naming the command: this is not a cluster client.
The chart's values are merged the way helm merges them: values files in
order (maps deep-merged, lists replaced, null kept so it deletes a default),
then --set, then --set-string.
"""

from __future__ import annotations

import sys

PROG = "helm (maas-e2e engine wrapper)"
USAGE = 64


def die(msg: str, code: int = 1) -> None:
    print(f"Error: {msg}", file=sys.stderr)
    sys.exit(code)


def refuse(what: str) -> None:
    die(
        f"{PROG}: `helm {what}` is not supported here; only `template`, "
        "`dependency build` and `dependency update` run on the engine (no "
        "cluster exists on this host: use the real helm binary for that)",
        USAGE,
    )


def merge(base: dict, over: dict) -> dict:
    # helm's values-file merge: maps merge, everything else replaces.
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def take(argv: list[str], i: int, flag: str) -> tuple[str, int]:
    if "=" in argv[i] and argv[i].startswith("--"):
        return argv[i].split("=", 1)[1], i + 1
    if i + 1 >= len(argv):
        die(f"flag needs an argument: {flag}", USAGE)
    return argv[i + 1], i + 2


def template(argv: list[str]) -> None:
    import helm_python as helm

    positional: list[str] = []
    files: list[str] = []
    sets: list[tuple[str, str]] = []
    namespace = "default"
    i = 0
    while i < len(argv):
        a = argv[i]
        name = a.split("=", 1)[0]
        if name in ("-f", "--values"):
            v, i = take(argv, i, name)
            files.append(v)
        elif name in ("--set", "--set-string"):
            v, i = take(argv, i, name)
            sets.append((name, v))
        elif name in ("-n", "--namespace"):
            namespace, i = take(argv, i, name)
        elif name == "--kube-version":
            _, i = take(argv, i, name)
        elif a.startswith("-"):
            die(f"{PROG}: template: unsupported flag {a}", USAGE)
        else:
            positional.append(a)
            i += 1
    if len(positional) == 1:
        release, chart_dir = "release-name", positional[0]
    elif len(positional) == 2:
        release, chart_dir = positional
    else:
        die("template: want [NAME] CHART", USAGE)
    values: dict = {}
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as e:
            die(f"open {f}: {e.strerror}")
        try:
            merge(values, helm.values_from_yaml(text) or {})
        except helm.HelmError as e:
            die(f"failed to parse {f}: {e}")
    for flag, expr in sets:
        try:
            parsed = (
                helm.parse_set_string_values(expr)
                if flag == "--set-string"
                else helm.parse_set_string(expr)
            )
        except helm.HelmError as e:
            # The expression may hold a secret: name the key only.
            die(f"failed parsing {flag} {expr.split('=', 1)[0]}=...: {e}")
        merge(values, parsed)
    try:
        with helm.Chart.load(chart_dir) as chart:
            rendered = chart.render(
                values, name=release, namespace=namespace, is_install=True
            )
    except helm.HelmError as e:
        die(str(e))
    out = sys.stdout
    for path in sorted(rendered):
        body = rendered[path]
        # Like helm: NOTES.txt and empty documents are not manifests.
        if path.endswith("NOTES.txt") or not body.strip():
            continue
        out.write(f"---\n# Source: {path}\n{body.strip()}\n")


def dependency(argv: list[str]) -> None:
    import helm_python as helm

    if not argv:
        die("dependency: want build|update CHART", USAGE)
    sub, rest = argv[0], argv[1:]
    if sub not in ("build", "update", "up"):
        refuse(f"dependency {sub}")
    skip_refresh = "--skip-refresh" in rest
    rest = [a for a in rest if a != "--skip-refresh"]
    bad = [a for a in rest if a.startswith("-")]
    if bad:
        die(f"{PROG}: dependency {sub}: unsupported flag {bad[0]}", USAGE)
    if len(rest) != 1:
        die(f"dependency {sub}: want CHART", USAGE)
    try:
        if sub == "build":
            helm.dependency_build(rest[0], skip_refresh=skip_refresh)
        else:
            helm.dependency_update(rest[0], skip_refresh=skip_refresh)
    except helm.HelmError as e:
        die(f"dependency {sub} {rest[0]}: {e}")


def main(argv: list[str]) -> None:
    if not argv:
        die(f"{PROG}: want template or dependency", USAGE)
    cmd, rest = argv[0], argv[1:]
    if cmd == "template":
        template(rest)
    elif cmd in ("dependency", "dep", "dependencies"):
        dependency(rest)
    else:
        refuse(cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
