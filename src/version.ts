/**
 * The package's version, as OpenTelemetry's instrumentation scope reports
 * it. A constant, not a read of package.json, so that bundled apps load;
 * test/version.test.ts keeps it equal to package.json's.
 */
export const version = '0.2.0';
