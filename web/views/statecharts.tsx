import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { activePaths, allActors, describe, findActor, live, useLive } from '../live.js';
import { Card, fmtTime } from './common.js';

interface GraphNode {
  path: string;
  key: string;
  type: string;
  initial?: string;
  tags: string[];
  invokes: string[];
  children: GraphNode[];
}
interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}
interface Machine {
  name: string;
  id: string;
  root: GraphNode;
  edges: Array<{ id: string; source: string; target: string; events: string[] }>;
  width: number;
  height: number;
  layout: { nodes: Record<string, Box>; edges: Record<string, { points: Array<[number, number]>; label?: { x: number; y: number; lines: string[] } }> };
}

let machinesOnce: Promise<Machine[]> | undefined;
const loadMachines = () =>
  (machinesOnce ??= api<{ machines: Machine[] }>('/api/v1/machines').then(
    (r) => r.machines,
    (e) => ((machinesOnce = undefined), Promise.reject(e)),
  ));

export function Statecharts() {
  useLive();
  const [machines, setMachines] = useState<Machine[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [chosen, setChosen] = useState('supervisor');
  const [fit, setFit] = useState(false);
  useEffect(() => void loadMachines().then(setMachines, (e) => setError(String(e.message))), []);

  const actors = [...allActors(), ...live.ended.values()].filter((a) => a.actor.machine);
  const key = (path: string[]) => path.join('/');
  const selected = actors.find((a) => key(a.path) === chosen) ?? actors[0];
  const actor = selected ? findActor(selected.path) : undefined;
  const machine = machines?.find((m) => m.id === actor?.machine);
  const transitions = selected ? (live.transitions.get(key(selected.path)) ?? []) : [];
  return (
    <div class="stack">
      <div class="toolbar">
        <label>
          Actor{' '}
          <select value={selected ? key(selected.path) : ''} onChange={(e) => setChosen(e.currentTarget.value)} data-testid="actor-picker">
            {actors.map((a) => (
              <option value={key(a.path)}>
                {a.path.slice(1).join(' › ') || a.path[0]} ({a.actor.machine}){a.actor.status !== 'active' ? ` – ${a.actor.status}` : ''}
              </option>
            ))}
          </select>
        </label>
        <button type="button" aria-pressed={fit} onClick={() => setFit(!fit)}>
          Fit to width
        </button>
        {actor && (
          <span data-testid="active-state">
            state: <strong>{describe(actor.state)}</strong> {actor.status !== 'active' && <span class="badge">{actor.status}</span>}
          </span>
        )}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {machine && actor ? (
        <Chart machine={machine} active={new Set(activePaths(actor.state))} fit={fit} />
      ) : (
        !error && <p class="muted">Loading the machines…</p>
      )}
      <Card title="Last transitions" testid="transitions">
        {transitions.length === 0 ? (
          <p class="muted">None seen since this page opened.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>time</th>
                <th>from → to</th>
                <th>events</th>
              </tr>
            </thead>
            <tbody>
              {transitions.map((t) => (
                <tr>
                  <td>{fmtTime(t.at)}</td>
                  <td>
                    {t.from} → <strong>{t.to}</strong>
                  </td>
                  <td>
                    <code>{t.events.join(', ') || '–'}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </div>
  );
}

/** The machine's states as boxes (compound ones holding their children), its transitions as arrows. */
function Chart({ machine, active, fit }: { machine: Machine; active: Set<string>; fit: boolean }) {
  const { nodes, edges } = machine.layout;
  const boxes: Array<{ node: GraphNode; box: Box; depth: number }> = [];
  const walk = (node: GraphNode, depth: number) => {
    if (node.path !== '' && nodes[node.path]) boxes.push({ node, box: nodes[node.path], depth });
    for (const c of node.children) walk(c, depth + 1);
  };
  walk(machine.root, 0);
  const initials = new Set(boxes.flatMap(({ node }) => (node.initial ? [node.initial] : [])));
  if (machine.root.initial) initials.add(machine.root.initial);
  const scroller = useRef<HTMLDivElement>(null);
  const activeKey = [...active].join(',');
  // bring the innermost active state into view when it changes (big charts scroll)
  useEffect(() => {
    const box = scroller.current;
    const target = box?.querySelector('.state.atomic.active, .state.final.active') as SVGGraphicsElement | null;
    if (!box || !target) return;
    const t = target.getBoundingClientRect();
    const b = box.getBoundingClientRect();
    if (t.left < b.left || t.right > b.right) box.scrollLeft += t.left - b.left - (b.width - t.width) / 2;
    if (t.top < b.top || t.bottom > b.bottom) box.scrollTop += t.top - b.top - (b.height - t.height) / 2;
  }, [machine.name, activeKey, fit]);
  return (
    <div class="chart" data-testid="statechart" data-machine={machine.name} ref={scroller}>
      <svg
        viewBox={`0 0 ${machine.width} ${machine.height}`}
        width={fit ? '100%' : machine.width}
        height={fit ? undefined : machine.height}
        role="img"
        aria-label={`statechart of ${machine.name}`}
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
          </marker>
        </defs>
        {boxes.map(({ node, box }) => {
          const compound = node.children.length > 0;
          const on = active.has(node.path);
          return (
            <g
              class={`state ${compound ? 'compound' : 'atomic'} ${node.type}${on ? ' active' : ''}`}
              data-state={node.path}
              data-active={on ? 'true' : undefined}
            >
              <rect x={box.x} y={box.y} width={box.width} height={box.height} rx={compound ? 8 : 14} />
              {initials.has(node.path) && (
                <circle cx={box.x + 2} cy={box.y + 2} r={4} class="initial">
                  <title>initial state</title>
                </circle>
              )}
              <text x={box.x + (compound ? 10 : box.width / 2)} y={box.y + 18} text-anchor={compound ? 'start' : 'middle'} class="name">
                {node.key}
                {node.type === 'final' ? ' ✓' : ''}
                {node.type === 'parallel' ? ' ∥' : ''}
              </text>
              {node.invokes.length > 0 && (
                <text x={box.x + (compound ? 10 : box.width / 2)} y={box.y + 33} text-anchor={compound ? 'start' : 'middle'} class="detail">
                  ⟳ {node.invokes.join(', ').slice(0, 33)}
                </text>
              )}
              <title>
                {[node.path, node.tags.length ? `tags: ${node.tags.join(', ')}` : '', node.invokes.length ? `invokes: ${node.invokes.join(', ')}` : '']
                  .filter(Boolean)
                  .join('\n')}
              </title>
            </g>
          );
        })}
        {machine.edges.map((edge) => {
          const route = edges[edge.id];
          if (!route || route.points.length < 2) return null;
          return (
            <g class="edge">
              <polyline points={route.points.map((p) => p.join(',')).join(' ')} marker-end="url(#arrow)" />
              {route.label && (
                <text x={route.label.x} y={route.label.y + 11} class="label">
                  {route.label.lines.map((line, i) => (
                    <tspan x={route.label!.x} dy={i === 0 ? 0 : 15}>
                      {line}
                    </tspan>
                  ))}
                  <title>{edge.events.join('\n')}</title>
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}
