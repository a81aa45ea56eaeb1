"""The store brain: sessions, fusion, the cart ledger, receipts and the HTTP API."""
