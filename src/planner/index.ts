export { planApp, planAppDir, planToDockerfile, readAppFiles, PLANNER_BASE_IMAGES } from './plan.js';
export type { AppFiles, AppLanguage, AppPlan, PlanOptions } from './plan.js';
