import type { Command } from 'commander';
import { planAppDir, planToDockerfile } from '../../planner/index.js';
import type { CliContext } from '../shared.js';

/** `kiln plan DIR`: the zero-config build plan of an app folder, as a Dockerfile on stdout (notes with --explain). */
export function registerPlan(program: Command, _cli: CliContext): void {
  program
    .command('plan')
    .description('Print the Dockerfile `kiln build DIR` uses for an app folder without a Dockerfile')
    .argument('[dir]', 'app folder', '.')
    .option('--base <image>', 'base image instead of the language default')
    .option('--json', 'print the plan as JSON (language, manifests, steps, notes)')
    .option('--explain', 'also print why each choice was made (on stderr)')
    .action(async (dir: string, o: { base?: string; json?: boolean; explain?: boolean }) => {
      const plan = planAppDir(dir, o.base ? { base: o.base } : {});
      if (o.json) {
        const { defaultContext: _ctx, ...template } = plan.template;
        process.stdout.write(`${JSON.stringify({ ...plan, template, dockerfile: planToDockerfile(plan) }, null, 2)}\n`);
        return;
      }
      if (o.explain) for (const n of plan.notes) process.stderr.write(`# ${n}\n`);
      process.stdout.write(planToDockerfile(plan));
    });
}
