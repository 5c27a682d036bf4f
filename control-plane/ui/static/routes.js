// The dashboard's pages: one file per page under pages/, one line here each. A page is
// `async ({ args, refresh }) => template` (lit-html); `nav` names the header link it lights up, and a `link` adds one.
// `poll: false` loads a page once (forms); `poll: 'slow'` refreshes it at a fifth of the rate (reports: every device's
// newest measurement, 3 MB and about 90 ms of the control plane at 10,000 devices).
import { devicePage } from './pages/device.js';
import { fleetPage } from './pages/fleet.js';
import { modelReportPage } from './pages/model-report.js';
import { modelPage } from './pages/model.js';
import { modelsPage } from './pages/models.js';
import { rolloutNewPage } from './pages/rollout-new.js';
import { rolloutPage } from './pages/rollout.js';
import { rolloutsPage } from './pages/rollouts.js';
import { tokensPage } from './pages/tokens.js';
import { trainingJobPage } from './pages/training-job.js';
import { trainingNewPage } from './pages/training-new.js';
import { trainingPage } from './pages/training.js';
import { tuningPage } from './pages/tuning.js';
import { tuningsPage } from './pages/tunings.js';

export const ROUTES = [
  { pattern: /^#\/fleet$/, page: fleetPage, nav: 'fleet', link: 'Fleet' },
  { pattern: /^#\/devices\/([^/]+)$/, page: devicePage, nav: 'fleet' },
  { pattern: /^#\/enrollment$/, page: tokensPage, nav: 'enrollment', link: 'Enrollment' },
  { pattern: /^#\/training$/, page: trainingPage, nav: 'training', link: 'Training' },
  { pattern: /^#\/training\/new$/, page: trainingNewPage, nav: 'training', poll: false },
  { pattern: /^#\/training\/([^/]+)$/, page: trainingJobPage, nav: 'training' },
  { pattern: /^#\/models$/, page: modelsPage, nav: 'models', link: 'Models' },
  { pattern: /^#\/models\/([^/]+)\/report$/, page: modelReportPage, nav: 'models', poll: 'slow' },
  { pattern: /^#\/models\/([^/]+)$/, page: modelPage, nav: 'models' },
  { pattern: /^#\/rollouts$/, page: rolloutsPage, nav: 'rollouts', link: 'Rollouts' },
  { pattern: /^#\/rollouts\/new$/, page: rolloutNewPage, nav: 'rollouts', poll: false },
  { pattern: /^#\/rollouts\/([^/]+)$/, page: rolloutPage, nav: 'rollouts' },
  { pattern: /^#\/tunings$/, page: tuningsPage, nav: 'tunings', link: 'Tunings' },
  { pattern: /^#\/tunings\/([^/]+)$/, page: tuningPage, nav: 'tunings' },
];
