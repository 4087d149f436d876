/** Inline SVG bar charts (no chart library: a few rects and labels say it). */

export interface Bar {
  label: string;
  /** stacked segments, drawn left to right */
  parts: Array<{ value: number; kind: 'ran' | 'saved' | 'cached' }>;
  title: string;
}

const LEGEND: Array<[Bar['parts'][number]['kind'], string]> = [['ran', 'ran'], ['cached', 'cached'], ['saved', 'time saved by cache hits']];
const ROW = 22;
const LABEL = 170;

/** Horizontal stacked bars, one row per item, with a text alternative in <title>/<desc>. */
export function BarChart(props: { title: string; description: string; bars: Bar[]; unit: (v: number) => string }) {
  const max = Math.max(1, ...props.bars.map((b) => b.parts.reduce((n, p) => n + p.value, 0)));
  const width = 640;
  const plot = width - LABEL - 70;
  const height = props.bars.length * ROW + 8;
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby="chart-t chart-d" preserveAspectRatio="xMinYMin meet">
        <title id="chart-t">{props.title}</title>
        <desc id="chart-d">{props.description}</desc>
        {props.bars.map((b, i) => {
          let x = LABEL;
          const total = b.parts.reduce((n, p) => n + p.value, 0);
          return (
            <g key={i} transform={`translate(0 ${i * ROW + 4})`}>
              <title>{b.title}</title>
              <text x={LABEL - 6} y={ROW / 2 + 4} text-anchor="end" class="chart-label">{b.label.length > 24 ? `${b.label.slice(0, 23)}…` : b.label}</text>
              {b.parts.map((p, j) => {
                if (p.value <= 0) return null;
                const w = (p.value / max) * plot;
                const r = <rect key={j} x={x} y={2} width={Math.max(w, 1)} height={ROW - 6} class={`bar-${p.kind}`} />;
                x += w;
                return r;
              })}
              <text x={x + 4} y={ROW / 2 + 4} class="chart-value">{props.unit(total)}</text>
            </g>
          );
        })}
      </svg>
      <p class="legend">
        {LEGEND.filter(([k]) => props.bars.some((b) => b.parts.some((p) => p.kind === k))).map(([k, text]) => (
          <span key={k}><span class={`swatch bar-${k}`} aria-hidden="true" /> {text}</span>
        ))}
      </p>
    </figure>
  );
}

/** A line over points in order (e.g. one per build), with the first and last values labelled. */
export function LineChart(props: { title: string; description: string; points: Array<{ label: string; value: number }>; unit: (v: number) => string }) {
  const width = 640;
  const height = 180;
  const pad = { l: 70, r: 16, t: 12, b: 28 };
  const max = Math.max(1, ...props.points.map((p) => p.value));
  const n = props.points.length;
  const x = (i: number): number => pad.l + (n > 1 ? (i / (n - 1)) * (width - pad.l - pad.r) : 0);
  const y = (v: number): number => height - pad.b - (v / max) * (height - pad.t - pad.b);
  const d = props.points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)} ${y(p.value).toFixed(1)}`).join(' ');
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby="line-t line-d" preserveAspectRatio="xMinYMin meet">
        <title id="line-t">{props.title}</title>
        <desc id="line-d">{`${props.description} From ${props.unit(props.points[0]?.value ?? 0)} to ${props.unit(props.points[n - 1]?.value ?? 0)}.`}</desc>
        <line x1={pad.l} y1={height - pad.b} x2={width - pad.r} y2={height - pad.b} class="axis" />
        <line x1={pad.l} y1={pad.t} x2={pad.l} y2={height - pad.b} class="axis" />
        <text x={pad.l - 6} y={pad.t + 8} text-anchor="end" class="chart-label">{props.unit(max)}</text>
        <text x={pad.l - 6} y={height - pad.b} text-anchor="end" class="chart-label">0</text>
        <path d={d} class="line" />
        {props.points.map((p, i) => (
          <circle key={i} cx={x(i)} cy={y(p.value)} r={3} class="dot"><title>{`${p.label}: ${props.unit(p.value)}`}</title></circle>
        ))}
        <text x={pad.l} y={height - 8} class="chart-label">{props.points[0]?.label}</text>
        <text x={width - pad.r} y={height - 8} text-anchor="end" class="chart-label">{props.points[n - 1]?.label}</text>
      </svg>
    </figure>
  );
}
