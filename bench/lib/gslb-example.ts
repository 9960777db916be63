// The three regions of examples/gslb.yaml (Frankfurt, Virginia, Singapore) for the GSLB benches.
/** One upstream per region, on the example's ports (nothing needs to listen there). */
export const EXAMPLE_UPSTREAMS = {
  eu: { servers: [{ url: 'http://127.0.0.1:19101' }] },
  us: { servers: [{ url: 'http://127.0.0.1:19102' }] },
  asia: { servers: [{ url: 'http://127.0.0.1:19103' }] },
};

/** The regions, each with the address DNS answers for it. */
export const EXAMPLE_REGIONS = {
  eu: { latitude: 50.11, longitude: 8.68, upstream: 'eu', addresses: ['127.0.1.1'] },
  us: { latitude: 38.95, longitude: -77.45, upstream: 'us', addresses: ['127.0.1.2'] },
  asia: { latitude: 1.35, longitude: 103.82, upstream: 'asia', addresses: ['127.0.1.3'] },
};
