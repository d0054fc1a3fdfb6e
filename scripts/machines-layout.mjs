// Lays out every machine of machines/index.ts (the registry) with elkjs at build time, so the
// page draws statecharts without shipping a layout engine (elkjs alone is ~10× the page's
// budget). Reads the JavaScript that `tsc -p tsconfig.json` wrote to dist/.
import ELK from 'elkjs/lib/elk.bundled.js';

const CHAR = 7; // px per character of the 12 px system font, a little generous
const LINE = 15;
const MAX_LABEL = 34;

// ELK wants non-empty ids; the root's path is ''
const idOf = (path) => (path === '' ? '#root' : path);
const pathOfId = (id) => (id === '#root' ? '' : id);
const clip = (text) => (text.length > MAX_LABEL ? `${text.slice(0, MAX_LABEL - 1)}…` : text);
const textWidth = (lines) => Math.max(...lines.map((l) => l.length)) * CHAR;

function detailOf(node) {
  return node.invokes.length ? `⟳ ${node.invokes.join(', ')}` : '';
}

function elkNode(node) {
  const detail = detailOf(node);
  const label = node.type === 'final' ? `${node.key} ✓` : node.key;
  if (node.children.length === 0) {
    const lines = [label, ...(detail ? [clip(detail)] : [])];
    return { id: idOf(node.path), width: Math.max(64, textWidth(lines) + 24), height: 14 + lines.length * LINE };
  }
  const top = 26 + (detail ? LINE : 0);
  return {
    id: idOf(node.path),
    layoutOptions: { 'elk.padding': `[top=${top},left=12,bottom=12,right=12]` },
    children: node.children.map(elkNode),
  };
}

function elkEdge(edge) {
  const lines = edge.events.slice(0, 4).map(clip);
  if (edge.events.length > 4) lines.push(`+${edge.events.length - 4} more`);
  return {
    id: edge.id,
    sources: [idOf(edge.source)],
    targets: [idOf(edge.target)],
    labels: [{ text: lines.join('\n'), width: textWidth(lines), height: lines.length * LINE }],
  };
}

function collect(node, out) {
  out[pathOfId(node.id)] = { x: node.x, y: node.y, width: node.width, height: node.height };
  for (const child of node.children ?? []) collect(child, out);
  return out;
}

/** The graph plus absolute positions of every node, edge route and edge label. */
export async function layoutMachine(graph) {
  const elk = new ELK();
  const rootNode = elkNode(graph.root);
  const laid = await elk.layout({
    id: '__root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.layered.spacing.nodeNodeBetweenLayers': '36',
      'elk.spacing.nodeNode': '24',
      'elk.spacing.edgeLabel': '4',
      'elk.edgeLabels.inline': 'false',
      'elk.json.edgeCoords': 'ROOT',
      'elk.json.shapeCoords': 'ROOT',
      'elk.padding': '[top=8,left=8,bottom=8,right=8]',
    },
    children: [rootNode],
    edges: graph.edges.map(elkEdge),
  });
  const nodes = collect(laid.children[0], {});
  const edges = Object.fromEntries(
    laid.edges.map((e) => [
      e.id,
      {
        points: (e.sections ?? []).flatMap((s) => [s.startPoint, ...(s.bendPoints ?? []), s.endPoint]).map((p) => [Math.round(p.x), Math.round(p.y)]),
        label: e.labels?.[0] ? { x: Math.round(e.labels[0].x), y: Math.round(e.labels[0].y), lines: e.labels[0].text.split('\n') } : undefined,
      },
    ]),
  );
  return { ...graph, width: Math.ceil(laid.width), height: Math.ceil(laid.height), layout: { nodes, edges } };
}

export async function layoutAll() {
  const { machines } = await import('../dist/machines/index.js');
  const { describeMachine } = await import('../dist/src/http/machine-graph.js');
  const out = [];
  for (const [name, machine] of Object.entries(machines)) out.push(await layoutMachine(describeMachine(name, machine)));
  return { machines: out };
}
