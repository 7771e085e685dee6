// Drives a kafkasim broker with kafkajs: admin (create and list topics),
// an idempotent producer with every codec kafkajs ships (none, gzip), a
// consumer group reading everything back, and the group's committed
// offsets. Prints "ok <consumed>" on success; any failure exits non-zero.
const { Kafka, logLevel, CompressionTypes } = require('kafkajs')

const broker = process.argv[2]
const total = 40
const kafka = new Kafka({ clientId: 'kafkajs-check', brokers: [broker], logLevel: logLevel.ERROR })

async function main() {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: 'kjs', numPartitions: 3 }], waitForLeaders: true })
  const topics = await admin.listTopics()
  if (!topics.includes('kjs')) throw new Error('topic not listed: ' + topics)

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (let i = 0; i < total; i++) {
    const compression = i % 2 === 0 ? CompressionTypes.None : CompressionTypes.GZIP
    await producer.send({ topic: 'kjs', compression, messages: [{ key: 'k' + (i % 7), value: 'v' + i }] })
  }
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: 'kjs-group' })
  await consumer.connect()
  await consumer.subscribe({ topic: 'kjs', fromBeginning: true })
  const seen = new Set()
  await new Promise((resolve, reject) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.add(message.value.toString())
        if (seen.size === total) resolve()
      },
    }).catch(reject)
  })
  await consumer.commitOffsets([])
  await consumer.disconnect()

  const offsets = await admin.fetchOffsets({ groupId: 'kjs-group', topics: ['kjs'] })
  const committed = offsets[0].partitions.reduce((sum, p) => sum + Number(p.offset), 0)
  if (committed !== total) throw new Error('committed offsets sum to ' + committed + ', want ' + total)
  await admin.disconnect()
  console.log('ok ' + seen.size)
}

main().then(() => process.exit(0)).catch((e) => { console.error(e); process.exit(1) })
