/** The web dashboard (`twlab ui`): live census with the model's forecast, predict, lab runs. */
export { startUi, DEFAULT_UI_LISTEN } from './server.js';
export type { UiOptions, UiHandle } from './server.js';
export { dashboardCensus, predictInputFromForm } from './api.js';
export type { DashboardCensus, Forecast } from './api.js';
export { TOKEN_HEADER } from './guard.js';
