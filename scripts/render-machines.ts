/**
 * Renders every machine in machines/ to a Mermaid state diagram, from its definition:
 * `npm run statecharts` writes docs/statecharts/<name>.md; `--check` fails when one is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AnyStateMachine } from 'xstate';
import { machines } from '../machines/index.js';
import { eventLabel, guardLabel } from '../src/http/machine-graph.js';

export const outDir = fileURLToPath(new URL('../docs/statecharts/', import.meta.url));

interface Node {
  key: string;
  id: string;
  type: string;
  states: Record<string, Node>;
  initial?: { target: Node[] };
  transitions: Map<string, Transition[]>;
  always?: Transition[];
  invoke: Array<{ src: unknown; id: string }>;
  tags: string[];
  parent?: Node;
}
interface Transition {
  eventType: string;
  target?: Node[];
  guard?: unknown;
  reenter?: boolean;
}

const mermaidId = (node: Node) => node.id.replace(/[^a-zA-Z0-9]/g, '_');

function renderNode(node: Node, lines: string[], indent: string): void {
  const children = Object.values(node.states);
  const details = [
    node.invoke.length ? `invokes ${node.invoke.map((i) => (typeof i.src === 'string' ? i.src : i.id)).join(', ')}` : '',
    node.tags.length ? `tags: ${node.tags.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  const label = `${node.key}${details ? ` (${details})` : ''}${node.type === 'parallel' ? ' [parallel]' : ''}`;
  lines.push(`${indent}state "${label}" as ${mermaidId(node)}`);
  if (children.length === 0) return;
  lines.push(`${indent}state ${mermaidId(node)} {`);
  children.forEach((child, i) => {
    if (node.type === 'parallel' && i > 0) lines.push(`${indent}  --`);
    renderNode(child, lines, `${indent}  `);
    if (node.type === 'parallel') renderEdges(child, lines, `${indent}  `);
  });
  if (node.type !== 'parallel') renderInside(node, lines, `${indent}  `);
  lines.push(`${indent}}`);
}

/** The initial arrow and the transitions of a compound node's children, drawn inside it. */
function renderInside(node: Node, lines: string[], indent: string): void {
  const children = Object.values(node.states);
  if (node.type !== 'parallel' && node.initial?.target[0]) lines.push(`${indent}[*] --> ${mermaidId(node.initial.target[0])}`);
  for (const child of children) {
    renderEdges(child, lines, indent);
    if (child.type === 'final') lines.push(`${indent}${mermaidId(child)} --> [*]`);
  }
}

function renderEdges(node: Node, lines: string[], indent: string): void {
  const all = [...[...node.transitions.values()].flat(), ...(node.always ?? []).map((t) => ({ ...t, eventType: 'always' }))];
  for (const t of all) {
    const targets = t.target?.length ? t.target : [node];
    for (const target of targets) lines.push(`${indent}${mermaidId(node)} --> ${mermaidId(target)}: ${eventLabel(t.eventType)}${guardLabel(t.guard)}`);
  }
}

export function renderMachine(name: string, machine: AnyStateMachine): string {
  const root = machine.root as unknown as Node;
  const lines = ['stateDiagram-v2'];
  renderNode(root, lines, '  ');
  renderEdges(root, lines, '  ');
  lines.unshift(`# ${name}`, '', `Rendered from \`machines/${name}.ts\` by \`npm run statecharts\`; do not edit by hand.`, '', '```mermaid');
  lines.push('```', '');
  return lines.join('\n');
}

export function renderAll(): Record<string, string> {
  return Object.fromEntries(Object.entries(machines).map(([name, machine]) => [`${name}.md`, renderMachine(name, machine)]));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [file, text] of Object.entries(renderAll())) {
    const path = join(outDir, file);
    if (check) {
      let current = '';
      try {
        current = readFileSync(path, 'utf8');
      } catch {}
      if (current !== text) stale++, console.error(`stale: docs/statecharts/${file}`);
    } else writeFileSync(path, text);
  }
  if (stale) process.exit(1);
}
