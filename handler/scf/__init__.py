"""The Tencent SCF way in: ``entry`` routes every event by its shape (``handler.main_handler``, ``index.main_handler``
in the SCF bundle); the queue triggers (CKafka, CMQ, TDMQ through EventBridge), HTTP (Function URL and old API
Gateway) and the maintenance job that applies TDMQ for CMQ dead letters again."""
