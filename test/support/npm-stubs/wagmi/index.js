// Never imported by x402-fetch; see package.json.
export {};
