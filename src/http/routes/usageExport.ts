/** Usage export: CSV, JSON Lines or a JSON array, streamed in constant memory; or the PDF usage report. */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { GRANULARITIES, RANGES } from '../../domain/ranges.ts';
import { invalid } from '../../services/errors.ts';
import {
  EXPORT_COLUMN_SETS,
  EXPORT_COLUMNS,
  EXPORT_FORMATS,
  exportUsage,
} from '../../services/usage/exportUsage.ts';
import { FOCUS_COLUMNS } from '../../services/usage/focusColumns.ts';
import { usageReportPdf } from '../../services/usage/usageReportPdf.ts';
import type { AppEnv } from '../env.ts';
import { errorResponses, OrgParam, Text } from '../schemas.ts';

const ExportQuery = z.strictObject({
  format: z
    .enum([...EXPORT_FORMATS, 'pdf'])
    .default('csv')
    .openapi({
      description:
        'csv (a header row, CRLF), jsonl (one JSON object per line), json (one array), or pdf: the usage report of the range (totals, cumulative chart, breakdowns by feature, member and model, top conversations, limits and alerts)',
    }),
  columns: z
    .enum(EXPORT_COLUMN_SETS)
    .default('tally')
    .openapi({
      description: `tally (the columns below) or focus (the FinOps FOCUS column set: ${FOCUS_COLUMNS.join(', ')})`,
    }),
  range: z.enum(RANGES).optional().openapi({ description: 'Default 30d (custom when from/to are given)' }),
  from: z.string().max(40).optional(),
  to: z.string().max(40).optional(),
  granularity: z.enum(GRANULARITIES).optional(),
  member: Text(200).optional(),
  feature: Text(200).optional(),
  model: Text(200).optional(),
  provider: Text(200).optional(),
  workspace: Text(200).optional(),
  workspace_group: Text(200).optional(),
  surface: Text(200).optional(),
  project: Text(200).optional(),
  api_key: Text(200).optional(),
});

export function usageExportRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/usage/export',
      tags: ['Usage'],
      summary:
        'Export every event of a range, oldest first, streamed (CSV, JSON Lines or JSON), or the PDF report',
      description: `Columns: ${EXPORT_COLUMNS.join(', ')}. Amounts are exact decimal strings; provider_cost_usd is filled for operator keys only; a removed member is "Unknown user".`,
      request: { params: OrgParam, query: ExportQuery },
      responses: {
        200: {
          description: 'The export, streamed',
          content: {
            'text/csv': { schema: z.string() },
            'application/x-ndjson': { schema: z.string() },
            'application/json': { schema: z.array(z.record(z.string(), z.string().nullable())) },
            'application/pdf': { schema: z.string().openapi({ format: 'binary' }) },
          },
        },
        ...errorResponses,
      },
    }),
    async (c) => {
      const { format, columns, ...query } = c.req.valid('query');
      if (format === 'pdf') {
        if (columns !== 'tally') throw invalid('columns', 'columns applies to csv, jsonl and json exports');
        const report = await usageReportPdf(c.get('ctx'), c.req.valid('param').org, query);
        return c.body(new Uint8Array(report.pdf), 200, {
          'content-type': 'application/pdf',
          'content-disposition': `attachment; filename="${report.filename}"`,
          'cache-control': 'no-store',
        });
      }
      const out = await exportUsage(c.get('ctx'), c.req.valid('param').org, query, format, { columns });
      return c.body(out.stream, 200, {
        'content-type': out.contentType,
        'content-disposition': `attachment; filename="${out.filename}"`,
        'cache-control': 'no-store',
      });
    },
  );
}
