/**
 * The demo's OpenTelemetry metrics, served in Prometheus's text format on the
 * app's own `/metrics` route: the SDK's MeterProvider with the Prometheus
 * exporter as its reader, its own HTTP server not started.
 */
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/** A MeterProvider for the store, and the text a scrape of it gives. */
export interface PrometheusMetrics {
  readonly meterProvider: MeterProvider;
  /** Collects every instrument now (the live-session gauge counts at most once per its interval). */
  scrape(): Promise<string>;
  shutdown(): Promise<void>;
}

export function prometheusMetrics(): PrometheusMetrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  const serializer = new PrometheusSerializer();
  return {
    meterProvider,
    scrape: async () => serializer.serialize((await exporter.collect()).resourceMetrics),
    shutdown: () => meterProvider.shutdown(),
  };
}
