import { z } from 'zod';
import { ModelVersionSchema, TrainingJobViewSchema, VerifyReportSchema } from '../registry.ts';
import { DatasetSummarySchema } from '../training.ts';
import { page } from './common.ts';

/** Answers of /models and /training-jobs: the registry's and the training room's own view schemas. */

export const ModelListSchema = page(ModelVersionSchema);
/** GET /models/:id without ?version: the model and all its versions, newest first. */
export const ModelWithVersionsSchema = z.object({
  id: z.string(),
  name: z.string(),
  profileId: z.string().nullable(),
  recipeId: z.string().nullable(),
  kind: z.string(),
  role: z.string(),
  latestVersion: z.number().int(),
  versions: z.array(ModelVersionSchema),
});
/** GET /models/:id answers one version with ?version=, else the model with its versions. */
export const ModelGetSchema = z.union([ModelWithVersionsSchema, ModelVersionSchema]);
export { ModelVersionSchema, TrainingJobViewSchema, VerifyReportSchema };

export const TrainingJobListSchema = page(TrainingJobViewSchema);
/** POST /training-jobs: the queued job and what the submit-time check read of its dataset (null: the check could not run). */
export const TrainingJobCreatedSchema = TrainingJobViewSchema.extend({ datasetSummary: DatasetSummarySchema.nullable() });
