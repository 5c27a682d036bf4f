import { page } from './common.ts';
import { TuningReportSchema, TuningSummarySchema, TuningViewSchema } from '../tuning.ts';

/** Responses of the tuning room (control-plane/tuning/routes.ts); the types live with the request schemas in shared/tuning.ts. */
export const TuningResponseSchema = TuningViewSchema;
export const TuningListResponseSchema = page(TuningSummarySchema);
export const TuningReportResponseSchema = TuningReportSchema;
