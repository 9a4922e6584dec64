#!/usr/bin/env python3
"""Convert the sample knowledge graph from neo4j-admin import CSV to APOC JSON lines.

    tools/kg_csv_to_apoc.py [--csv-dir data/kg/csv] [--out data/kg/apoc.jsonl]
    tools/kg_csv_to_apoc.py --check            # validate the CSV graph (and the test set), write nothing
    tools/kg_csv_to_apoc.py --stats [--test-set data/test_set.jsonl]   # Markdown tables for data/README.md

The CSV files (data/kg/csv/nodes_*.csv, relationships_*.csv) are the source of truth; the APOC
file is generated from them so the two forms cannot drift (docs/dataset.md fixes both forms).

CSV rules followed (the neo4j-admin import header format): a node file has one ID column
(`id:ID`, `name:ID`, `:ID` or `:ID(space)`), a `:LABEL` column (labels separated by ';') and
property columns `name` or `name:type` (int, long, float, double, boolean, string, and the array
forms `type[]` with ';' between elements). A relationship file has `:START_ID`, `:END_ID`, `:TYPE`
and optional property columns. Empty fields are not stored, as neo4j-admin does by default.

APOC form (as `CALL apoc.export.json.all(...)` writes it): nodes get consecutive string ids
"0", "1", ... in file order, relationships continue the count; the CSV id is kept as the node
property `id` when its column is named `id:ID` (or `<prop>:ID`, kept under `<prop>`).
Only the Python standard library is used.
"""
import argparse
import collections
import csv
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATEGORIES = ["Survey", "Planning", "Design", "Maintenance-River", "Maintenance-Dam",
              "Maintenance-Sabo", "Hazard", "Comparative/Cross-Cutting"]
CATEGORIES_JA = {"調査": "Survey", "計画": "Planning", "設計": "Design",
                 "維持管理_河川": "Maintenance-River", "維持管理_ダム": "Maintenance-Dam",
                 "維持管理_砂防": "Maintenance-Sabo", "ハザード": "Hazard",
                 "比較・横断": "Comparative/Cross-Cutting"}
REL_TYPES = ["HAS_CHAPTER", "DESCRIBED_IN", "HAS_SECTION", "HAS_ITEM", "DEFINED_IN", "SUBJECT_TO",
             "USED_IN", "REQUIRES", "AFFECTS", "MITIGATES", "PRECEDES"]
LABELS = ["Standard", "Volume", "Chapter", "Section", "Item", "Concept"]
CLAUSE_TYPES = {"考え方", "必須", "標準", "推奨", "例示"}


class GraphError(Exception):
    pass


def convert_value(raw, typ, where):
    """Convert one CSV field to a JSON value according to its header type."""
    if typ.endswith("[]"):
        base = typ[:-2]
        return [convert_value(x, base, where) for x in raw.split(";") if x != ""]
    t = typ.lower()
    try:
        if t in ("int", "long", "short", "byte"):
            return int(raw)
        if t in ("float", "double"):
            return float(raw)
    except ValueError:
        raise GraphError(f"{where}: '{raw}' is not a valid {typ}")
    if t == "boolean":
        if raw.lower() not in ("true", "false"):
            raise GraphError(f"{where}: '{raw}' is not a valid boolean")
        return raw.lower() == "true"
    return raw


def parse_header(cols, where):
    """Split header columns into (kind, property name, type)."""
    out = []
    for c in cols:
        if c == ":LABEL":
            out.append(("label", None, None))
        elif c in (":START_ID", ":END_ID", ":TYPE") or c.startswith(":START_ID(") or c.startswith(":END_ID("):
            out.append((c.split("(")[0][1:].lower(), None, None))
        elif ":ID" in c:
            prop = c.split(":ID")[0]
            out.append(("id", prop or None, "string"))
        elif ":" in c:
            prop, typ = c.split(":", 1)
            if not prop:
                raise GraphError(f"{where}: unsupported header column '{c}'")
            out.append(("prop", prop, typ))
        else:
            out.append(("prop", c, "string"))
    return out


def read_csv(path):
    with open(path, "rb") as fb:
        data = fb.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise GraphError(f"{path}: not valid UTF-8 ({e})")
    if text.startswith("\ufeff"):
        raise GraphError(f"{path}: starts with a byte-order mark")
    rows = list(csv.reader(text.splitlines(keepends=True), strict=True))
    if not rows:
        raise GraphError(f"{path}: empty file")
    return rows[0], rows[1:]


def load_graph(csv_dir):
    nodes, rels = [], []
    node_files = sorted(glob.glob(os.path.join(csv_dir, "nodes_*.csv")))
    rel_files = sorted(glob.glob(os.path.join(csv_dir, "relationships_*.csv")))
    if not node_files or not rel_files:
        raise GraphError(f"{csv_dir}: need nodes_*.csv and relationships_*.csv files")
    # structure first so the Standard/Volume nodes get the low APOC ids
    node_files.sort(key=lambda p: (not p.endswith("nodes_structure.csv"), p))
    rel_files.sort(key=lambda p: (not p.endswith("relationships_structure.csv"), p))
    for path in node_files:
        header, body = read_csv(path)
        spec = parse_header(header, path)
        if sum(1 for k, _, _ in spec if k == "id") != 1:
            raise GraphError(f"{path}: a node file needs exactly one ID column")
        for lineno, row in enumerate(body, start=2):
            where = f"{os.path.relpath(path, ROOT)}:{lineno}"
            if len(row) != len(spec):
                raise GraphError(f"{where}: {len(row)} fields, header has {len(spec)}")
            node = {"id": None, "labels": [], "properties": {}, "where": where}
            for (kind, prop, typ), raw in zip(spec, row):
                if kind == "id":
                    node["id"] = raw
                    if prop and raw != "":
                        node["properties"][prop] = raw
                elif kind == "label":
                    node["labels"] = [x for x in raw.split(";") if x]
                elif raw != "":
                    node["properties"][prop] = convert_value(raw, typ, f"{where} column {prop}")
            nodes.append(node)
    for path in rel_files:
        header, body = read_csv(path)
        spec = parse_header(header, path)
        kinds = [k for k, _, _ in spec]
        for need in ("start_id", "end_id", "type"):
            if need not in kinds:
                raise GraphError(f"{path}: relationship header lacks :{need.upper()}")
        for lineno, row in enumerate(body, start=2):
            where = f"{os.path.relpath(path, ROOT)}:{lineno}"
            if len(row) != len(spec):
                raise GraphError(f"{where}: {len(row)} fields, header has {len(spec)}")
            rel = {"properties": {}, "where": where}
            for (kind, prop, typ), raw in zip(spec, row):
                if kind in ("start_id", "end_id", "type"):
                    rel[kind] = raw
                elif raw != "":
                    rel["properties"][prop] = convert_value(raw, typ, f"{where} column {prop}")
            rels.append(rel)
    return nodes, rels


def check_graph(nodes, rels):
    """Raise GraphError on the first structural problem; return a list of warnings."""
    warnings = []
    by_id = {}
    for n in nodes:
        if not n["id"]:
            raise GraphError(f"{n['where']}: empty node id")
        if n["id"] in by_id:
            raise GraphError(f"{n['where']}: duplicate node id '{n['id']}' (first at {by_id[n['id']]['where']})")
        by_id[n["id"]] = n
        if len(n["labels"]) != 1 or n["labels"][0] not in LABELS:
            raise GraphError(f"{n['where']}: node needs exactly one label of {LABELS}, has {n['labels']}")
        p, lab = n["properties"], n["labels"][0]
        if not p.get("name"):
            raise GraphError(f"{n['where']}: node without a name")
        need = {"Volume": ["volume", "category"], "Chapter": ["volume", "chapter", "category", "description"],
                "Section": ["volume", "chapter", "section", "description"],
                "Item": ["volume", "chapter", "section", "description"],
                "Concept": ["category", "description"]}.get(lab, [])
        for k in need:
            if not p.get(k):
                raise GraphError(f"{n['where']}: {lab} '{p['name']}' lacks '{k}'")
        cat = p.get("category")
        if cat and cat not in CATEGORIES and cat not in CATEGORIES_JA:
            raise GraphError(f"{n['where']}: unknown category '{cat}'")
        if p.get("clause_type") and p["clause_type"] not in CLAUSE_TYPES:
            raise GraphError(f"{n['where']}: unknown clause_type '{p['clause_type']}'")
        if p.get("source") and p["source"] not in ("public", "illustrative"):
            raise GraphError(f"{n['where']}: source must be public or illustrative")
    # relationships: endpoints, types, directions
    allowed = {
        "HAS_CHAPTER": ({"Volume", "Standard"}, {"Chapter", "Volume"}),
        "HAS_SECTION": ({"Chapter"}, {"Section"}),
        "HAS_ITEM": ({"Section"}, {"Item"}),
        "DESCRIBED_IN": ({"Concept"}, {"Chapter", "Section"}),
        "DEFINED_IN": ({"Concept"}, {"Section", "Item"}),
        "SUBJECT_TO": ({"Concept"}, {"Item", "Concept"}),
        "USED_IN": ({"Concept"}, {"Concept"}),
        "REQUIRES": ({"Concept"}, {"Concept"}),
        "AFFECTS": ({"Concept"}, {"Concept"}),
        "MITIGATES": ({"Concept"}, {"Concept"}),
        "PRECEDES": ({"Concept", "Item"}, {"Concept", "Item"}),
    }
    seen = set()
    for r in rels:
        for end in ("start_id", "end_id"):
            if r[end] not in by_id:
                raise GraphError(f"{r['where']}: {end} '{r[end]}' is not a node id")
        if r["type"] not in allowed:
            raise GraphError(f"{r['where']}: unknown relationship type '{r['type']}'")
        s, e = by_id[r["start_id"]]["labels"][0], by_id[r["end_id"]]["labels"][0]
        ok_s, ok_e = allowed[r["type"]]
        if s not in ok_s or e not in ok_e:
            raise GraphError(f"{r['where']}: {r['type']} from {s} to {e} is not allowed by docs/dataset.md")
        if r["type"] == "HAS_CHAPTER" and (s == "Standard") != (e == "Volume"):
            raise GraphError(f"{r['where']}: HAS_CHAPTER runs Standard->Volume or Volume->Chapter")
        key = (r["start_id"], r["type"], r["end_id"])
        if key in seen:
            raise GraphError(f"{r['where']}: duplicate relationship {key}")
        seen.add(key)
    # citations agree with the structure: a Section's chapter is its parent chapter, etc.
    parent = {}
    for r in rels:
        if r["type"] in ("HAS_CHAPTER", "HAS_SECTION", "HAS_ITEM"):
            if r["end_id"] in parent:
                raise GraphError(f"{r['where']}: '{r['end_id']}' has two parents")
            parent[r["end_id"]] = r["start_id"]
    chapters = {}  # (volume, chapter) -> set of section names
    for n in nodes:
        lab, p = n["labels"][0], n["properties"]
        if lab in ("Chapter", "Section", "Item") and n["id"] not in parent:
            raise GraphError(f"{n['where']}: {lab} '{p['name']}' has no parent")
        if lab in ("Section", "Item"):
            par = by_id[parent[n["id"]]]["properties"]
            for k in ("volume", "chapter") + (("section",) if lab == "Item" else ()):
                if par.get(k) != p.get(k):
                    raise GraphError(f"{n['where']}: {k} '{p.get(k)}' differs from its parent's '{par.get(k)}'")
        if lab == "Chapter":
            vol = by_id[parent[n["id"]]]["properties"]
            if vol.get("volume") != p.get("volume"):
                raise GraphError(f"{n['where']}: volume differs from its parent volume")
            chapters.setdefault((p["volume"], p["chapter"]), set())
        if lab == "Section":
            chapters.setdefault((p["volume"], p["chapter"]), set()).add(p["section"])
    for n in nodes:
        if n["labels"][0] != "Concept":
            continue
        p = n["properties"]
        if p.get("chapter") and (p.get("volume"), p["chapter"]) not in chapters:
            raise GraphError(f"{n['where']}: concept cites '{p.get('volume')} {p['chapter']}', which is not a chapter")
        if p.get("section") and p["section"] not in chapters.get((p.get("volume"), p.get("chapter")), set()):
            raise GraphError(f"{n['where']}: concept cites section '{p['section']}', not in its chapter")
    linked = {r["start_id"] for r in rels} | {r["end_id"] for r in rels}
    for n in nodes:
        if n["id"] not in linked:
            warnings.append(f"{n['where']}: node '{n['properties']['name']}' has no relationship")
    return warnings


def to_apoc(nodes, rels):
    apoc_id, lines = {}, []
    for i, n in enumerate(nodes):
        apoc_id[n["id"]] = str(i)
        lines.append({"type": "node", "id": str(i), "labels": n["labels"], "properties": n["properties"]})
    labels = {n["id"]: n["labels"] for n in nodes}
    for j, r in enumerate(rels, start=len(nodes)):
        lines.append({"type": "relationship", "id": str(j), "label": r["type"], "properties": r["properties"],
                      "start": {"id": apoc_id[r["start_id"]], "labels": labels[r["start_id"]]},
                      "end": {"id": apoc_id[r["end_id"]], "labels": labels[r["end_id"]]}})
    return "".join(json.dumps(x, ensure_ascii=False, separators=(",", ":")) + "\n" for x in lines)


def load_test_set(path):
    items = []
    with open(path, "rb") as fb:
        text = fb.read().decode("utf-8")
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise GraphError(f"{path}:{lineno}: invalid JSON ({e})")
        for k in ("id", "category", "question", "reference_answer", "citation"):
            if not obj.get(k):
                raise GraphError(f"{path}:{lineno}: missing '{k}'")
        cat = CATEGORIES_JA.get(obj["category"], obj["category"])
        if cat not in CATEGORIES:
            raise GraphError(f"{path}:{lineno}: unknown category '{obj['category']}'")
        cit = obj["citation"]
        if isinstance(cit, dict) and not (cit.get("volume") and cit.get("chapter")):
            raise GraphError(f"{path}:{lineno}: citation needs volume and chapter")
        if not isinstance(cit, (dict, str)):
            raise GraphError(f"{path}:{lineno}: citation must be a string or an object")
        items.append((lineno, obj))
    ids = [o["id"] for _, o in items]
    if len(set(ids)) != len(ids):
        raise GraphError(f"{path}: duplicate ids")
    return items


def parse_citation(text, chapters, sections):
    """Split '<volume> <chapter>[ <section>]' using the graph's own names; None if it matches none."""
    for vol, ch in sorted(chapters, key=lambda x: -len(x[0]) - len(x[1])):
        head = f"{vol} {ch}"
        if text == head:
            return {"volume": vol, "chapter": ch}
        if text.startswith(head + " ") and (vol, ch, text[len(head) + 1:]) in sections:
            return {"volume": vol, "chapter": ch, "section": text[len(head) + 1:]}
    return None


def check_citations(items, nodes, path):
    """Every test-set citation must name a volume/chapter(/section) that exists in the graph."""
    chapters, sections = set(), set()
    for n in nodes:
        p = n["properties"]
        if n["labels"][0] == "Chapter":
            chapters.add((p["volume"], p["chapter"]))
        if n["labels"][0] == "Section":
            sections.add((p["volume"], p["chapter"], p["section"]))
    for lineno, o in items:
        c = o["citation"]
        if isinstance(c, str):  # "<volume> <chapter>[ <section>]", e.g. "調査編 第2章 水文・水理観測 第3節 雨量観測"
            c = parse_citation(c, chapters, sections)
            if c is None:
                raise GraphError(f"{path}:{lineno}: citation '{o['citation']}' does not name a chapter "
                                 "(and section) of the graph as '<volume> <chapter>[ <section>]'")
        if (c["volume"], c["chapter"]) not in chapters:
            raise GraphError(f"{path}:{lineno}: citation {c['volume']} {c['chapter']} is not a chapter of the graph")
        if c.get("section") and (c["volume"], c["chapter"], c["section"]) not in sections:
            raise GraphError(f"{path}:{lineno}: citation section {c['section']} is not in the graph")


def stats(nodes, rels, items):
    out = []
    lab = collections.Counter(n["labels"][0] for n in nodes)
    out.append(f"Nodes: {len(nodes)}\n\n| label | nodes |\n|---|---|")
    out += [f"| `{l}` | {lab[l]} |" for l in LABELS if lab[l]]
    typ = collections.Counter(r["type"] for r in rels)
    out.append(f"\nRelationships: {len(rels)}\n\n| type | count | share |\n|---|---|---|")
    out += [f"| `{t}` | {typ[t]} | {100.0 * typ[t] / len(rels):.1f}% |" for t in REL_TYPES if typ[t]]
    cat = collections.Counter(CATEGORIES_JA.get(n["properties"]["category"], n["properties"]["category"])
                              for n in nodes if n["labels"][0] == "Concept")
    out.append(f"\nConcepts per category ({sum(cat.values())}):\n\n| category | concepts |\n|---|---|")
    out += [f"| {c} | {cat[c]} |" for c in CATEGORIES]
    src = collections.Counter((n["labels"][0], n["properties"].get("source", "")) for n in nodes
                              if n["labels"][0] in ("Volume", "Chapter", "Section", "Item"))
    out.append("\nStructure nodes by source:\n\n| label | public | illustrative |\n|---|---|---|")
    out += [f"| `{l}` | {src[(l, 'public')]} | {src[(l, 'illustrative')]} |"
            for l in ("Volume", "Chapter", "Section", "Item")]
    cl = collections.Counter(n["properties"]["clause_type"] for n in nodes if n["properties"].get("clause_type"))
    out.append("\nItems per clause type: " + ", ".join(f"{k} {cl[k]}" for k in ("考え方", "必須", "標準", "推奨", "例示")))
    if items is not None:
        tc = collections.Counter(CATEGORIES_JA.get(o["category"], o["category"]) for _, o in items)
        out.append(f"\nTest questions per category ({len(items)}):\n\n| category | questions |\n|---|---|")
        out += [f"| {c} | {tc[c]} |" for c in CATEGORIES]
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv-dir", default=os.path.join(ROOT, "data", "kg", "csv"))
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "kg", "apoc.jsonl"))
    ap.add_argument("--test-set", default=os.path.join(ROOT, "data", "test_set.jsonl"))
    ap.add_argument("--check", action="store_true", help="validate only; exit 1 if the APOC file is stale")
    ap.add_argument("--stats", action="store_true", help="print Markdown count tables")
    a = ap.parse_args(argv)
    try:
        nodes, rels = load_graph(a.csv_dir)
        for w in check_graph(nodes, rels):
            print("warning:", w, file=sys.stderr)
        items = None
        if os.path.exists(a.test_set):
            items = load_test_set(a.test_set)
            check_citations(items, nodes, a.test_set)
        text = to_apoc(nodes, rels)
    except GraphError as e:
        print("error:", e, file=sys.stderr)
        return 1
    if a.stats:
        sys.stdout.write(stats(nodes, rels, items))
        return 0
    if a.check:
        current = open(a.out, encoding="utf-8").read() if os.path.exists(a.out) else None
        if current != text:
            print(f"error: {a.out} is stale; run tools/kg_csv_to_apoc.py", file=sys.stderr)
            return 1
        print(f"ok: {len(nodes)} nodes, {len(rels)} relationships" +
              (f", {len(items)} test questions" if items is not None else ""))
        return 0
    with open(a.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {a.out}: {len(nodes)} nodes, {len(rels)} relationships")
    return 0


if __name__ == "__main__":
    sys.exit(main())
