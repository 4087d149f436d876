/** Inline SVG bar charts (no chart library: a few rects and labels say it). */

export interface Bar {
  label: string;
  /** stacked segments, drawn left to right */
  parts: Array<{ value: number; kind: 'ran' | 'saved' | 'cached' }>;
  title: string;
}

const ROW = 22;
const LABEL = 140;

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
              <text x={LABEL - 6} y={ROW / 2 + 4} text-anchor="end" class="chart-label">{b.label.length > 20 ? `${b.label.slice(0, 19)}…` : b.label}</text>
              {b.parts.map((p, j) => {
                const w = (p.value / max) * plot;
                const r = <rect key={j} x={x} y={2} width={Math.max(w, p.value > 0 ? 1 : 0)} height={ROW - 6} class={`bar-${p.kind}`} />;
                x += w;
                return r;
              })}
              <text x={x + 4} y={ROW / 2 + 4} class="chart-value">{props.unit(total)}</text>
            </g>
          );
        })}
      </svg>
      <p class="legend">
        <span class="swatch bar-ran" aria-hidden="true" /> ran
        <span class="swatch bar-cached" aria-hidden="true" /> cached
        <span class="swatch bar-saved" aria-hidden="true" /> time saved by cache hits
      </p>
    </figure>
  );
}
